"""Runtime support for compiled templates: JavaScript value semantics, lookups, escaping, block plumbing.

Compiled templates call into this module for everything that must behave like Handlebars.js running on V8:
how values print (`1` not `1.0`, lists comma-joined), what counts as true, how `{{#each}}` iterates objects.
Nothing here raises on odd data: a send must not die because a variable is missing or has the wrong type. What
does raise is the budget (budget.py): `State` carries what is left of it, and the step, depth and output checks
live here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from time import perf_counter
from typing import Any

from clarion.templates.budget import CLOCK_EVERY, BudgetExceeded, Limits, RenderError, exceeded

__all__ = [
    "NOOP",
    "Options",
    "Prog",
    "SafeString",
    "State",
    "escape",
    "is_empty",
    "js_truthy",
    "to_str",
]

_NEEDS_ESCAPE = re.compile(r"[&<>\"'`=]")
PRIMITIVES = (str, int, float, bool, type(None))


class SafeString(str):
    """A helper result that is already HTML and must not be escaped again (Handlebars' SafeString)."""

    __slots__ = ()


def _format_float(value: float) -> str:
    """ECMAScript Number::toString for a float, from Python's shortest round-trip digits."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    n = len("".join(map(str, digit_tuple))) + int(exponent)  # decimal point position relative to digits
    n -= len("".join(map(str, digit_tuple))) - len(digits)
    stripped = digits.rstrip("0")
    digits = stripped or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return f"{sign}{digits}e{exp_text}"
    return f"{sign}{digits[0]}.{digits[1:]}e{exp_text}"


def to_str(value: Any) -> str:
    """JavaScript `String(value)` as Handlebars appends it; null/undefined become ''."""
    t = type(value)
    if t is str:
        return value
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value) if -(2**53) < value < 2**53 else _format_float(float(value))
    if t is float:
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return _format_float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):
        return ",".join("" if item is None else to_str(item) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return to_str(float(value)) if isinstance(value, float) else str(int(value))
    return str(value)


def escape(value: Any) -> str:
    """Handlebars' escapeExpression: the value as text with `&<>"'`=` replaced by entities."""
    if type(value) is not str:
        if value is None:
            return ""
        if isinstance(value, SafeString):
            return str.__str__(value)
        value = to_str(value)
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
        .replace("`", "&#x60;")
        .replace("=", "&#x3D;")
    )


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: {} and [] are true, '' 0 NaN null false are not."""
    if type(value) is str:
        return value != ""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value == value and value != 0
    return True


def is_empty(value: Any) -> bool:
    """Handlebars' isEmpty: falsy except 0, or an empty list."""
    if isinstance(value, (list, tuple)):
        return not value
    if not js_truthy(value):
        return not (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)
    return False


def if_true(value: Any, include_zero: Any = None) -> bool:
    """The `#if` test: truthy and not an empty list (0 counts as true with includeZero=true)."""
    if type(value) is str:
        return value != ""
    if type(value) is dict:
        return True
    if include_zero is not None and js_truthy(include_zero):
        return not is_empty(value)
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return js_truthy(value)


def _canonical_index(key: str) -> int | None:
    if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def prop(obj: Any, key: str) -> Any:
    """obj[key] for non-dicts the way Handlebars' lookupProperty sees them (lists, strings, `.length`)."""
    t = type(obj)
    if t is list or t is str or t is tuple:
        if key.isdigit():
            index = _canonical_index(key)
            return obj[index] if index is not None and index < len(obj) else None
        return len(obj) if key == "length" else None
    if obj is None or t is int or t is float or t is bool:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    if isinstance(obj, (list, tuple, str)):
        return prop(list(obj) if not isinstance(obj, str) else str.__str__(obj), key)
    return None


def get(obj: Any, key: str) -> Any:
    """One path step: `obj.key`, None when it does not exist."""
    if type(obj) is dict:
        return obj.get(key)
    return prop(obj, key)


def depth(depths: tuple[Any, ...] | None, n: int) -> Any:
    """The context `n` levels up (`../`), None beyond the root."""
    return depths[n] if depths is not None and n < len(depths) else None


def data_path(data: Any, up: int, parts: tuple[str, ...]) -> Any:
    """`@name.x` (and `@../name`): walks data frames and carries falsy values like Handlebars' `&&` chain."""
    while data and up:
        data = data.get("_parent") if isinstance(data, dict) else None
        up -= 1
    value = data
    for part in parts:
        if not js_truthy(value):
            return value
        value = get(value, part)
    return value


def block_param(bps: tuple[Any, ...] | None, level: int, index: int) -> Any:
    """A block parameter (`as |item i|`) declared `level` programs up."""
    try:
        return bps[level][index]  # type: ignore[index]
    except (IndexError, TypeError, KeyError):
        return None


def frame(data: Any) -> dict[str, Any]:
    """A new data frame whose `@../` parent is `data` (Handlebars' createFrame)."""
    new = dict(data) if isinstance(data, dict) else {}
    new["_parent"] = data
    return new


def js_keys(obj: Mapping[str, Any]) -> list[Any]:
    """Object.keys order: array-index-like keys ascending first, then the others in insertion order."""
    keys = list(obj.keys())
    if not any(isinstance(k, str) and _canonical_index(k) is not None for k in keys):
        return keys
    indexed = sorted((k for k in keys if isinstance(k, str) and _canonical_index(k) is not None), key=int)
    return indexed + [k for k in keys if not (isinstance(k, str) and _canonical_index(k) is not None)]


class State:
    """Per-message render state: the inline partials in scope, and what is left of the budget."""

    __slots__ = ("deadline", "depth", "fuel", "limit", "limits", "outer", "partials", "spent")

    def __init__(self, limits: Limits, deadline: float | None = None) -> None:
        self.partials: dict[str, Prog] = {}
        # The `../` stack of the block being entered, before its own context is pushed: Handlebars binds inline
        # partials declared in a block to that (the root's is empty), so programs with decorators read it first.
        self.outer: tuple[Any, ...] | None = None
        self.limits = limits
        self.limit = limits.output  # output characters one part may reach (compiled code reads it)
        self.depth = 0
        self.spent = 0  # steps counted at the last refuel
        self.fuel = CLOCK_EVERY  # compiled code subtracts the steps it takes; below zero it calls refuel()
        # None: the clock starts at the first refuel, so a short render never reads it.
        self.deadline = deadline

    def refuel(self) -> None:
        """Count the steps taken since the last call, look at the clock, hand out the next few steps.

        The step count is exact at each refuel, so a render stops at most `CLOCK_EVERY` steps past the limit.
        """
        self.spent += CLOCK_EVERY - self.fuel
        limits = self.limits
        if self.spent > limits.steps:
            raise exceeded("steps", f"the render took more than {limits.steps:,} steps (templates.max_steps)")
        now = perf_counter()
        if self.deadline is None:
            self.deadline = now + limits.seconds
        elif now > self.deadline:
            raise exceeded("time", f"the render took more than {limits.seconds * 1000:g} ms (templates.max_render_ms)")
        self.fuel = CLOCK_EVERY

    def reserve(self, length: int) -> None:
        """Refuse, before building it, text longer than one part may be (padding helpers, replace, join)."""
        if length > self.limit:
            raise self.too_long(length)

    def too_long(self, length: int) -> BudgetExceeded:
        return exceeded(
            "output",
            f"the rendered text would be longer than {self.limit:,} characters ({length:,}; templates.max_output)",
        )

    def too_deep(self) -> BudgetExceeded:
        return exceeded("depth", f"partials nested more than {self.limits.depth} deep (templates.max_partial_depth)")


ProgramFn = Callable[[State, Any, tuple[Any, ...], Any, Any], str]


class Prog:
    """A block body bound to where it was opened; helpers call it as `options.fn(context, data, block_params)`.

    Like Handlebars' wrapProgram, it pushes the new context on the `../` stack only when the context changes,
    so `{{#if}}` does not add a level but `{{#each}}` and `{{#with}}` do.
    """

    __slots__ = ("bps", "data", "depths", "fn", "st")

    def __init__(self, fn: ProgramFn, st: State, depths: tuple[Any, ...] | None, data: Any, bps: Any) -> None:
        self.fn = fn
        self.st = st
        self.depths = depths
        self.data = data
        self.bps = bps

    def __call__(self, context: Any = None, data: Any = None, block_params: Any = None) -> str:
        st = self.st
        st.fuel -= 1
        if st.fuel < 0:
            st.refuel()
        depths = self.depths
        if depths is not None:
            top = depths[0] if depths else None
            if context is not top and (type(context) not in PRIMITIVES or context != top):
                depths = (context, *depths)
        bps = self.bps
        if bps is not None:
            bps = (block_params or (), *bps)
        st.outer = self.depths
        return self.fn(st, context, depths, self.data if data is None else data, bps)


def _noop(context: Any = None, data: Any = None, block_params: Any = None) -> str:
    return ""


NOOP: Callable[..., str] = _noop


class Options:
    """What a helper receives besides its positional arguments (Handlebars' `options` plus `this`).

    `fn` is None for inline use (`{{eq a b}}`) and a callable for block use (`{{#eq a b}}...{{/eq}}`),
    which is how helpers such as `eq` decide between yes=/no= values and rendering a block.
    """

    __slots__ = ("data", "fn", "hash", "inverse", "name", "st", "this")

    def __init__(
        self,
        st: State,
        this: Any,
        hash: dict[str, Any],
        data: Any,
        fn: Callable[..., str] | None,
        inverse: Callable[..., str] | None,
        name: str,
    ) -> None:
        self.st = st  # the render's budget: helpers that could build long text reserve it first
        self.this = this
        self.hash = hash
        self.data = data
        self.fn = fn
        self.inverse = inverse
        self.name = name


Helper = Callable[..., Any]


def call(
    st: State,
    helper: Helper,
    this: Any,
    data: Any,
    params: tuple[Any, ...],
    hash: dict[str, Any],
    fn: Callable[..., str] | None,
    inverse: Callable[..., str] | None,
    name: str,
) -> Any:
    """Invoke a helper (one step); any exception but the budget's (wrong argument types, bad data) renders as
    nothing."""
    st.fuel -= 1
    if st.fuel < 0:
        st.refuel()
    try:
        result = helper(Options(st, this, hash, data, fn, inverse, name), *params)
    except RenderError:
        raise
    except Exception:
        return None
    if type(result) is str and len(result) > st.limit:
        raise st.too_long(len(result))
    return result


def each(options: Options, context: Any = None, *_: Any) -> str:
    """`{{#each}}` over lists (and Object.keys order for dicts), with @index @key @first @last and `{{else}}`."""
    fn = options.fn or NOOP
    if isinstance(context, (list, tuple)):
        items: Any = enumerate(context)
    elif isinstance(context, Mapping):
        keys = js_keys(context)
        items = ((key, context[key]) for key in keys)
    else:
        return (options.inverse or NOOP)(options.this)
    st = options.st
    n = len(context)
    st.fuel -= n  # the whole loop is charged before it starts: a list too long for the budget never runs
    if st.fuel < 0:
        st.refuel()
    data = frame(options.data)
    out: list[str] = []
    length = 0
    for i, (key, item) in enumerate(items):
        data["key"] = key
        data["index"] = i
        data["first"] = i == 0
        data["last"] = i == n - 1
        piece = fn(item, data, (item, key))
        length += len(piece)
        if length > st.limit:
            raise st.too_long(length)
        out.append(piece)
    if not out:
        return (options.inverse or NOOP)(options.this)
    return "".join(out)


def block_helper_missing(options: Options, context: Any) -> str:
    """`{{#name}}` where name is data, not a helper: Mustache-style sections (lists loop, objects scope)."""
    fn = options.fn or NOOP
    inverse = options.inverse or NOOP
    if context is True:
        result = fn(options.this)
    elif context is False or context is None:
        result = inverse(options.this)
    elif isinstance(context, (list, tuple)):
        result = each(options, context) if context else inverse(options.this)
    else:
        result = fn(context)
    if len(result) > options.st.limit:
        raise options.st.too_long(len(result))
    return result


def partial(
    st: State,
    name: Any,
    context: Any,
    hash: dict[str, Any] | None,
    data: Any,
    indent: str,
) -> str:
    """`{{> name}}`: an inline partial in scope, rendered with the given context; unknown names render ''.

    A partial call is a step and one level of depth: recursion through partials is how a template loops forever.
    """
    program = st.partials.get(to_str(name))
    if program is None:
        return ""
    if st.depth >= st.limits.depth:
        raise st.too_deep()
    st.depth += 1
    try:
        if hash:
            context = {**context, **hash} if isinstance(context, Mapping) else dict(hash)
        result = program(context, data)
    except RenderError:
        raise
    except Exception:
        return ""
    finally:
        st.depth -= 1
    if len(result) > st.limit:
        raise st.too_long(len(result))
    if indent:
        lines = result.split("\n")
        for i, line in enumerate(lines):
            if not line and i + 1 == len(lines):
                break
            lines[i] = indent + line
        result = "\n".join(lines)
    return result
