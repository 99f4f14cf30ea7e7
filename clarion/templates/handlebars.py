"""Public entry points: compile a template once (cached), render it with a context and DefaultSubstitutions.

    >>> render("Hello {{User.UserAttributes.FirstName.[0]}}!", {"User": {"UserAttributes": {"FirstName": ["Ana"]}}})
    'Hello Ana!'

Compatibility target is Handlebars.js 4.7 (escaping, whitespace control, paths, else-if chains, each/with,
inline partials, subexpressions) with Pinpoint's helper set; `TemplateSyntaxError` names line and column.
Templates are written by tenants, so every render runs on a budget (budget.py) and raises `BudgetExceeded`
rather than running away; one `State` can carry a budget across the several parts of a message.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from threading import Lock
from time import perf_counter
from typing import Any

from clarion.templates import runtime
from clarion.templates.budget import BudgetExceeded, Limits, RenderError, exceeded
from clarion.templates.codegen import generate
from clarion.templates.helpers import PINPOINT_HELPERS
from clarion.templates.parser import TemplateSyntaxError, parse

__all__ = [
    "BudgetExceeded",
    "Environment",
    "Limits",
    "RenderError",
    "SafeString",
    "State",
    "Template",
    "TemplateSyntaxError",
    "apply_defaults",
    "compile_template",
    "configure",
    "limits",
    "new_state",
    "render",
]

SafeString = runtime.SafeString
State = runtime.State


class Template:
    """A compiled template: call `render(context)` as often as needed; odd data never makes it raise, only its
    budget does (`BudgetExceeded`)."""

    __slots__ = ("_bps", "_depths", "_root", "limits", "python_source", "source")

    def __init__(
        self,
        source: str,
        root: Callable[..., str],
        python_source: str,
        depths: bool,
        block_params: bool,
        limits: Limits,
    ) -> None:
        self.source = source
        self._root = root
        self.python_source = python_source
        self._depths = depths  # only templates using `../` track the context stack
        self._bps = () if block_params else None
        self.limits = limits  # the budget of a render that brings no State of its own

    def render(self, context: Any = None, state: State | None = None) -> str:
        """Render with `context` as `this` (and `@root`), drawing on `state`'s budget (a fresh one if None)."""
        if state is None:
            state = runtime.State(self.limits)
        state.outer = () if self._depths else None
        depths = (context,) if self._depths else None
        try:
            out = self._root(state, context, depths, {"root": context}, self._bps)
        except RecursionError:
            # Blocks nested deeper than Python's stack (partials are stopped well before by the depth budget).
            raise exceeded("depth", "the template nests blocks too deeply to render") from None
        if len(out) > state.limit:
            raise state.too_long(len(out))
        return out

    __call__ = render


class Environment:
    """A helper set plus an LRU cache of compiled templates keyed by source text."""

    def __init__(
        self,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        cache_size: int = 1024,
        limits: Limits | None = None,
    ) -> None:
        self.helpers: dict[str, Callable[..., Any]] = dict(PINPOINT_HELPERS if helpers is None else helpers)
        self.cache_size = cache_size
        self.limits = limits or Limits()
        self._cache: OrderedDict[str, Template] = OrderedDict()
        self._lock = Lock()

    def compile(self, source: str) -> Template:
        """The compiled template for `source`, from the cache when seen before; raises TemplateSyntaxError."""
        with self._lock:
            template = self._cache.get(source)
            if template is not None:
                self._cache.move_to_end(source)
                return template
        template = self._compile(source)
        with self._lock:
            self._cache[source] = template
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return template

    def is_compiled(self, source: str) -> bool:
        with self._lock:
            return source in self._cache

    def _compile(self, source: str) -> Template:
        try:
            program = parse(source)
            python_source, root, namespace = generate(program, self.helpers, source)
            code = compile(python_source, "<handlebars>", "exec")
        except TemplateSyntaxError:
            raise
        except (RecursionError, MemoryError, SyntaxError) as exc:
            raise TemplateSyntaxError(f"template too deeply nested ({type(exc).__name__})", 1, 1) from None
        exec(code, namespace)
        return Template(
            source, namespace[root], python_source, namespace["_DEPTHS"], namespace["_BLOCK_PARAMS"], self.limits
        )

    def configure(self, limits: Limits) -> None:
        """Use `limits` from now on (templates compiled before keep theirs until they leave the cache)."""
        with self._lock:
            self.limits = limits
            self._cache.clear()

    def new_state(self) -> State:
        """A fresh budget, its clock running from now: share it between the parts of one message."""
        return runtime.State(self.limits, perf_counter() + self.limits.seconds)

    def render(
        self, source: str, context: Any = None, default_substitutions: str | Mapping[str, Any] | None = None
    ) -> str:
        """Compile (cached) and render on a fresh budget; DefaultSubstitutions fill variables the context lacks."""
        return self.compile(source).render(apply_defaults(context, default_substitutions))


def _merge_defaults(target: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        if not isinstance(key, str):
            continue
        if "." in key and key not in target:
            # Flat form keyed by variable path: {"User.UserAttributes.FirstName": "there"}.
            head, _, rest = key.partition(".")
            nested = target.get(head)
            if nested is None:
                nested = target[head] = {}
            if isinstance(nested, dict):
                _merge_defaults(nested, {rest: value})
            continue
        current = target.get(key)
        if current is None or current == [] or current == "":
            target[key] = _copy(value)
        elif isinstance(current, dict) and isinstance(value, Mapping):
            merged = dict(current)
            _merge_defaults(merged, value)
            target[key] = merged


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def apply_defaults(context: Any, default_substitutions: str | Mapping[str, Any] | None) -> Any:
    """The context with DefaultSubstitutions filled in where a variable is missing (or null/empty).

    Pinpoint stores DefaultSubstitutions as a JSON string; both the nested form
    (`{"Attributes": {"Purchase": "Test"}}`) and the flat dotted form (`{"Attributes.Purchase": "Test"}`,
    `{"name": "there"}`) occur in the wild, so both are accepted. Invalid JSON is ignored rather than failing a send.
    The caller's context is not modified.
    """
    if not default_substitutions:
        return context
    defaults: Any = default_substitutions
    if isinstance(defaults, str):
        try:
            defaults = json.loads(defaults)
        except ValueError:
            return context
    if not isinstance(defaults, Mapping):
        return context
    if context is None:
        context = {}
    if not isinstance(context, dict):
        return context
    merged = dict(context)
    _merge_defaults(merged, defaults)
    return merged


_DEFAULT = Environment()


def compile_template(source: str) -> Template:
    """Compile `source` with Pinpoint's helpers (cached by source text)."""
    return _DEFAULT.compile(source)


def is_compiled(source: str) -> bool:
    """Whether `source` is in the compile cache, so compiling it again costs a lookup."""
    return _DEFAULT.is_compiled(source)


def configure(limits: Limits) -> None:
    """Set the process's render budget (the operator's `[templates]` settings, applied when the server starts)."""
    _DEFAULT.configure(limits)


def new_state() -> State:
    """A fresh budget for one message under the process's limits."""
    return _DEFAULT.new_state()


def limits() -> Limits:
    """The process's render budget."""
    return _DEFAULT.limits


def render(
    template_source: str, context: Mapping[str, Any] | Any, default_substitutions: str | Mapping[str, Any] | None = None
) -> str:
    """Render a Pinpoint template: compile once (cached), fill DefaultSubstitutions; only the budget fails it."""
    return _DEFAULT.render(template_source, context, default_substitutions)
