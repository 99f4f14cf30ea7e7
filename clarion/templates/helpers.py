"""Pinpoint's template helper set, plus the Handlebars.js built-ins (if, unless, each, with, lookup, log).

Pinpoint documents its helpers by example only; where a behaviour is not pinned down by those examples the
docstring says which convention we follow (Handlebars.java's StringHelpers/ConditionalHelpers or
handlebars-helpers, whose names and examples Pinpoint's list mirrors). Every helper tolerates wrong input:
it returns None (renders as empty) rather than raising, because a send must not die on data.

Helpers are called as `helper(options, *params)`; `options.fn` is None for inline use (`{{eq a b}}`) and the
block body for block use (`{{#eq a b}}...{{else}}...{{/eq}}`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import unicodedata
import uuid as _uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from clarion.templates.codegen import INLINE_IF
from clarion.templates.runtime import NOOP, Options, each, if_true, is_empty, js_truthy, prop, to_str

__all__ = ["BUILTIN_HELPERS", "PINPOINT_HELPERS", "java_date_format"]

Helper = Callable[..., Any]


# -- Handlebars.js built-ins --------------------------------------------------------------------------------------


def h_if(o: Options, *params: Any) -> Any:
    """`{{#if v}}`; inline `{{if v yes= no=}}` like Pinpoint's conditional helpers (Handlebars.js would throw)."""
    if len(params) != 1:
        return None
    result = if_true(params[0], o.hash.get("includeZero"))
    return _conditional(o, result)


def h_unless(o: Options, *params: Any) -> Any:
    """`{{#unless v}}`: `#if` with the branches swapped."""
    if len(params) != 1:
        return None
    return _conditional(o, not if_true(params[0], o.hash.get("includeZero")))


def h_each(o: Options, *params: Any) -> Any:
    """`{{#each list}}` / `{{#each object}}` with @index, @key, @first, @last and `{{else}}`."""
    if len(params) != 1 or o.fn is None:
        return None
    return each(o, params[0])


def h_with(o: Options, *params: Any) -> Any:
    """`{{#with obj}}` scopes the context to obj (Pinpoint does not document it; Handlebars.js has it)."""
    if len(params) != 1 or o.fn is None:
        return None
    value = params[0]
    if is_empty(value):
        return (o.inverse or NOOP)(o.this)
    return o.fn(value, o.data, (value,))


def h_lookup(o: Options, *params: Any) -> Any:
    """`{{lookup obj key}}`: dynamic property access."""
    if len(params) < 2:
        return None
    obj, key = params[0], params[1]
    if not js_truthy(obj):
        return obj
    return prop(obj, to_str(key))


def h_log(o: Options, *params: Any) -> Any:
    """`{{log ...}}` prints nothing in a message."""
    return None


INLINE_IF["if"] = h_if
INLINE_IF["unless"] = h_unless
INLINE_IF["each"] = h_each

BUILTIN_HELPERS: dict[str, Helper] = {
    "if": h_if,
    "unless": h_unless,
    "each": h_each,
    "with": h_with,
    "lookup": h_lookup,
    "log": h_log,
}


# -- coercions ----------------------------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """Pinpoint custom attributes are lists; a one-item list stands for its item."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def _num(value: Any) -> float | int | None:
    """A number from a number, a numeric string or a one-item list; None otherwise."""
    value = _scalar(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return None


def _int(value: Any, default: int | None = None) -> int | None:
    number = _num(value)
    if number is None or number != number or math.isinf(number):
        return default
    return int(number)


def _text(value: Any) -> str | None:
    """Text of a value as Handlebars prints it; None for null/undefined so helpers render empty."""
    value = _scalar(value)
    return None if value is None else to_str(value)


def _conditional(o: Options, result: bool) -> Any:
    """Block use renders fn/inverse; inline use returns hash yes/no (default true/false), as Handlebars.java."""
    if o.fn is not None:
        return o.fn(o.this) if result else (o.inverse or NOOP)(o.this)
    return o.hash.get("yes", True) if result else o.hash.get("no", False)


def _equal(a: Any, b: Any) -> bool:
    a, b = _scalar(a), _scalar(b)
    if a is None or b is None:
        return a is None and b is None
    if a == b and type(a) is type(b):
        return True
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return to_str(a) == to_str(b)


def _compare(a: Any, b: Any) -> int | None:
    """-1/0/1 comparing numerically when both sides are numbers (or numeric text), else as text."""
    a, b = _scalar(a), _scalar(b)
    if a is None or b is None:
        return None
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    sa, sb = to_str(a), to_str(b)
    return (sa > sb) - (sa < sb)


# -- conditional helpers ------------------------------------------------------------------------------------------


def h_and(o: Options, *params: Any) -> Any:
    """True when every argument is non-empty (empty: null, false, '', 0, empty list)."""
    return _conditional(o, bool(params) and all(if_true(_scalar(p)) for p in params))


def h_or(o: Options, *params: Any) -> Any:
    """True when any argument is non-empty."""
    return _conditional(o, any(if_true(_scalar(p)) for p in params))


def h_not(o: Options, *params: Any) -> Any:
    """True when the (first) argument is empty."""
    return _conditional(o, not params or not if_true(_scalar(params[0])))


def h_eq(o: Options, a: Any = None, b: Any = None, *_: Any) -> Any:
    """Equality; numbers and numeric text compare as numbers (`{{eq Attributes.Age.[0] 30}}` is true for "30")."""
    return _conditional(o, _equal(a, b))


def h_neq(o: Options, a: Any = None, b: Any = None, *_: Any) -> Any:
    """Inequality (the negation of eq)."""
    return _conditional(o, not _equal(a, b))


def _ordering(test: Callable[[int], bool]) -> Helper:
    def helper(o: Options, a: Any = None, b: Any = None, *_: Any) -> Any:
        result = _compare(a, b)
        return _conditional(o, result is not None and test(result))

    helper.__doc__ = "Ordering test: numeric when both sides are numbers or numeric text, else text order."
    return helper


# -- string helpers -----------------------------------------------------------------------------------------------


def h_abbreviate(o: Options, value: Any = None, width: Any = None, *_: Any) -> Any:
    """Truncate to N characters including a trailing "..." (Commons abbreviate); N < 4 renders empty and a
    non-numeric N leaves the text as is."""
    text, n = _text(value), _int(width)
    if text is None or n is None:
        return text
    if len(text) <= n:
        return text
    if n < 4:
        return None
    return text[: n - 3] + "..."


def h_capitalize(o: Options, value: Any = None, *_: Any) -> Any:
    """Upper-case the first letter of each word; `fully=true` also lower-cases the rest of each word."""
    text = _text(value)
    if text is None:
        return None
    fully = js_truthy(o.hash.get("fully"))
    words = re.split(r"(\s+)", text)
    return "".join((w[:1].upper() + (w[1:].lower() if fully else w[1:])) if w and not w.isspace() else w for w in words)


def h_capitalize_first(o: Options, value: Any = None, *_: Any) -> Any:
    """Upper-case the first character only."""
    text = _text(value)
    return None if text is None else text[:1].upper() + text[1:]


def _pad(o: Options, text: str, count: int, pad: str) -> str:
    if count <= 0 or not pad:
        return ""
    o.st.reserve(len(text) + count)  # `size` comes from the template or the data: check it before building
    return (pad * (count // len(pad) + 1))[:count]


def _pad_arg(o: Options) -> str:
    pad = o.hash.get("pad")
    return " " if pad is None else to_str(pad)


def h_center(o: Options, value: Any = None, *args: Any) -> Any:
    """Center in `size=` characters with `pad=` (default space); extra padding goes right (Commons center)."""
    text = _text(value)
    size = _int(o.hash.get("size", args[0] if args else None))
    if text is None or size is None:
        return text
    pads = size - len(text)
    if pads <= 0:
        return text
    pad = _pad_arg(o)
    o.st.reserve(size)
    return _pad(o, text, pads // 2, pad) + text + _pad(o, text, pads - pads // 2, pad)


def h_cut(o: Options, value: Any = None, remove: Any = " ", *_: Any) -> Any:
    """Remove every occurrence of the argument (default: spaces)."""
    text = _text(value)
    if text is None:
        return None
    needle = to_str(remove)
    return text.replace(needle, "") if needle else text


def h_ljust(o: Options, value: Any = None, size: Any = None, *_: Any) -> Any:
    """Left-justify: pad on the right to N characters with `pad=` (default space)."""
    text, n = _text(value), _int(o.hash.get("size", size))
    if text is None or n is None:
        return text
    return text + _pad(o, text, n - len(text), _pad_arg(o))


def h_rjust(o: Options, value: Any = None, size: Any = None, *_: Any) -> Any:
    """Right-justify: pad on the left to N characters with `pad=` (default space)."""
    text, n = _text(value), _int(o.hash.get("size", size))
    if text is None or n is None:
        return text
    return _pad(o, text, n - len(text), _pad_arg(o)) + text


def h_join(o: Options, value: Any = None, *args: Any) -> Any:
    """Join a list with a separator (default ", "); `prefix=`/`suffix=` wrap the whole result.

    Like Handlebars.java, non-list arguments are joined themselves with the last one as the separator:
    `{{join a b c ", "}}`.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items, separator = list(value), (args[0] if args else ", ")
    elif len(args) >= 2:
        items, separator = [value, *args[:-1]], args[-1]
    else:
        items, separator = [value], ", "
    separator = to_str(separator)
    o.st.reserve(len(separator) * (len(items) - 1))  # a long separator between many items
    joined = separator.join("" if item is None else to_str(item) for item in items)
    return to_str(o.hash.get("prefix", "")) + joined + to_str(o.hash.get("suffix", ""))


def h_lower(o: Options, value: Any = None, *_: Any) -> Any:
    """Lower-case."""
    text = _text(value)
    return None if text is None else text.lower()


def h_upper(o: Options, value: Any = None, *_: Any) -> Any:
    """Upper-case."""
    text = _text(value)
    return None if text is None else text.upper()


def h_replace(o: Options, value: Any = None, old: Any = None, new: Any = "", *_: Any) -> Any:
    """Replace every occurrence of the first argument with the second."""
    text = _text(value)
    if text is None or old is None:
        return text
    needle = to_str(old)
    if not needle:
        return text
    replacement = to_str(new)
    if len(replacement) > len(needle):  # each occurrence grows the text: check the total before building it
        o.st.reserve(len(text) + text.count(needle) * (len(replacement) - len(needle)))
    return text.replace(needle, replacement)


def h_slugify(o: Options, value: Any = None, *_: Any) -> Any:
    """URL slug: ASCII-folded, lower-case, non-word characters dropped, spaces/hyphens collapsed to "-"."""
    text = _text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[-\s]+", "-", text)


def h_strip_tags(o: Options, value: Any = None, *_: Any) -> Any:
    """Remove HTML/XML tags (the result is still escaped by `{{ }}`)."""
    text = _text(value)
    return None if text is None else re.sub(r"<[^>]*>", "", text)


def h_substring(o: Options, value: Any = None, start: Any = None, end: Any = None, *_: Any) -> Any:
    """Characters from `start` up to (not including) `end`; indices are clamped instead of failing."""
    text = _text(value)
    first = _int(start, 0)
    if text is None or first is None:
        return text
    last = _int(end, len(text)) if end is not None else len(text)
    first = max(0, min(first, len(text)))
    last = max(first, min(last if last is not None else len(text), len(text)))
    return text[first:last]


def h_yesno(o: Options, value: Any = None, *_: Any) -> Any:
    """true → yes=("yes"), false → no=("no"), null → maybe=("maybe"); other values count by truthiness."""
    value = _scalar(value)
    if value is None:
        return o.hash.get("maybe", "maybe")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    return o.hash.get("yes", "yes") if js_truthy(value) else o.hash.get("no", "no")


def h_inflect(o: Options, count: Any = None, singular: Any = None, plural: Any = None, *args: Any) -> Any:
    """Singular for a count of 1, plural otherwise; includeCount (hash or 4th argument) prefixes the count."""
    n = _num(count)
    if n is None:
        return None
    word = singular if n == 1 else plural
    include = o.hash.get("includeCount", args[0] if args else False)
    text = to_str(word)
    return f"{to_str(n)} {text}" if js_truthy(include) else text


def h_ordinalize(o: Options, value: Any = None, *_: Any) -> Any:
    """1 → 1st, 2 → 2nd, 3 → 3rd, 11–13 → th, 21 → 21st."""
    n = _int(value)
    if n is None:
        return _text(value)
    tail = abs(n) % 100
    suffix = "th" if 11 <= tail <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(tail % 10, "th")
    return f"{n}{suffix}"


# -- dates --------------------------------------------------------------------------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_STYLES = {"full": "EEEE, MMMM d, y", "long": "MMMM d, y", "medium": "MMM d, y", "short": "M/d/yy"}
_JAVA_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)


def _offset(dt: datetime, colon: bool, z_for_utc: bool, minutes: bool = True) -> str:
    delta = dt.utcoffset() or timedelta(0)
    if z_for_utc and not delta:
        return "Z"
    total = int(delta.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    hours, mins = divmod(abs(total), 60)
    if not minutes:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def _field(dt: datetime, ch: str, n: int) -> str:
    if ch in "yY":
        return f"{dt.year % 100:02d}" if n == 2 else str(dt.year).zfill(n)
    if ch in "ML":
        if n >= 4:
            return _MONTHS[dt.month - 1]
        if n == 3:
            return _MONTHS[dt.month - 1][:3]
        return str(dt.month).zfill(n)
    if ch == "d":
        return str(dt.day).zfill(n)
    if ch == "D":
        return str(dt.timetuple().tm_yday).zfill(n)
    if ch == "E":
        name = _DAYS[dt.weekday()]
        return name if n >= 4 else name[:3]
    if ch == "u":
        return str(dt.isoweekday()).zfill(n)
    if ch == "a":
        return "AM" if dt.hour < 12 else "PM"
    if ch == "H":
        return str(dt.hour).zfill(n)
    if ch == "k":
        return str(dt.hour or 24).zfill(n)
    if ch == "K":
        return str(dt.hour % 12).zfill(n)
    if ch == "h":
        return str(dt.hour % 12 or 12).zfill(n)
    if ch == "m":
        return str(dt.minute).zfill(n)
    if ch == "s":
        return str(dt.second).zfill(n)
    if ch == "S":
        return str(dt.microsecond // 1000).zfill(n)
    if ch == "z":
        name = dt.tzname() or "UTC"
        return name
    if ch == "Z":
        return _offset(dt, colon=False, z_for_utc=False)
    if ch == "X":
        return _offset(dt, colon=n >= 3, z_for_utc=True, minutes=n >= 2)
    if ch == "G":
        return "AD"
    if ch == "w":
        return str(dt.isocalendar()[1]).zfill(n)
    return ch * n


def java_date_format(dt: datetime, pattern: str) -> str:
    """Format like java.text.SimpleDateFormat (en-US names); full/long/medium/short are the US date styles."""
    pattern = _STYLES.get(pattern, pattern)
    out: list[str] = []
    for m in _JAVA_TOKEN.finditer(pattern):
        token = m.group()
        if token[0] == "'":
            out.append("'" if token == "''" else token[1:-1].replace("''", "'"))
        elif token[0].isascii() and token[0].isalpha():
            out.append(_field(dt, token[0], len(token)))
        else:
            out.append(token)
    return "".join(out)


def _parse_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    for m in _JAVA_TOKEN.finditer(_STYLES.get(pattern, pattern)):
        token = m.group()
        ch, n = token[0], len(token)
        if ch == "'":
            parts.append(re.escape("'" if token == "''" else token[1:-1].replace("''", "'")))
            continue
        if not (ch.isascii() and ch.isalpha()):
            parts.append(re.escape(token))
            continue
        group = ch if ch not in seen else None
        seen.add(ch)
        if (ch in "ML" and n >= 3) or ch == "E":
            rx = "[A-Za-z]+"
        elif ch == "a":
            rx = "[AaPp][Mm]"
        elif ch in "zZX":
            rx = r"Z|[+-]\d{2}:?(?:\d{2})?|[A-Za-z_/]+"
        elif ch in "yY":
            rx = r"\d{2}" if n == 2 else r"\d{4}" if n == 4 else r"\d{1,4}"
        else:
            rx = rf"\d{{{n}}}" if n >= 2 else r"\d{1,2}" if ch != "S" else r"\d+"
        parts.append(f"(?P<{group}>{rx})" if group and group in "yYMLdHhkKmsSaZzX" else f"(?:{rx})")
    return re.compile("".join(parts) + r"\Z")


def _parse_date(value: Any, input_format: str | None) -> datetime | None:
    value = _scalar(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)  # JavaScript-style epoch milliseconds
    if not isinstance(value, str):
        return None
    text = value.strip()
    if input_format:
        m = _parse_regex(input_format).match(text)
        if m is None:
            return None
        g = m.groupdict()
        month = g.get("M") or g.get("L") or "1"
        month_n = int(month) if month.isdigit() else [x[:3].lower() for x in _MONTHS].index(month[:3].lower()) + 1
        year = int(g.get("y") or g.get("Y") or 1970)
        if len(g.get("y") or g.get("Y") or "") == 2:
            year += 2000
        hour = int(g.get("H") or g.get("k") or g.get("h") or g.get("K") or 0)
        if (g.get("a") or "").lower() == "pm" and hour < 12:
            hour += 12
        if (g.get("a") or "").lower() == "am" and hour == 12:
            hour = 0
        zone = g.get("Z") or g.get("X") or g.get("z")
        tz: tzinfo = UTC
        if zone and zone != "Z":
            if zone[0] in "+-":
                digits = zone[1:].replace(":", "")
                delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
                tz = _fixed(-delta if zone[0] == "-" else delta)
            else:
                tz = _zone(zone) or UTC
        millis = int((g.get("S") or "0")[:3].ljust(3, "0"))
        return datetime(
            year, month_n, int(g.get("d") or 1), hour, int(g.get("m") or 0), int(g.get("s") or 0), millis * 1000, tz
        )
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        number = _num(text)
        return _parse_date(number, None) if number is not None else None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fixed(delta: timedelta) -> tzinfo:
    from datetime import timezone

    return timezone(delta)


def _zone(name: Any) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(to_str(name))
    except Exception:
        return None


def h_date_format(o: Options, value: Any = None, fmt: Any = None, *_: Any) -> Any:
    """Format a date (ISO-8601 text, epoch millis, or text in `inputFormat=`) with a Java SimpleDateFormat
    pattern or full/long/medium/short (default medium), from the 2nd argument or `outputFormat=`/`format=`,
    in `tz=` (default UTC)."""
    dt = _parse_date(value, _text(o.hash.get("inputFormat")))
    if dt is None:
        return None
    zone = _zone(o.hash.get("tz"))
    if zone is not None:
        dt = dt.astimezone(zone)
    pattern = fmt if fmt is not None else o.hash.get("outputFormat", o.hash.get("format", "medium"))
    return java_date_format(dt, to_str(pattern))


def h_now(o: Options, fmt: Any = None, *_: Any) -> Any:
    """The current date/time, formatted like dateFormat (default medium), in `tz=` (default UTC)."""
    dt = datetime.now(_zone(o.hash.get("tz")) or UTC)
    pattern = fmt if fmt is not None else o.hash.get("format", o.hash.get("outputFormat", "medium"))
    return java_date_format(dt, to_str(pattern))


# -- math ---------------------------------------------------------------------------------------------------------


def _arith(op: Callable[[Any, Any], Any]) -> Helper:
    def helper(o: Options, a: Any = None, b: Any = None, *_: Any) -> Any:
        x, y = _num(a), _num(b)
        if x is None or y is None:
            return None
        try:
            return op(x, y)
        except (ZeroDivisionError, OverflowError, ValueError):
            return None

    helper.__doc__ = "Arithmetic on numbers or numeric text; anything else (or division by zero) renders empty."
    return helper


def _unary(op: Callable[[Any], Any]) -> Helper:
    def helper(o: Options, a: Any = None, *_: Any) -> Any:
        x = _num(a)
        if x is None:
            return None
        try:
            return op(x)
        except (OverflowError, ValueError):
            return None

    helper.__doc__ = "Rounding on a number or numeric text; anything else renders empty."
    return helper


def _divide(x: float, y: float) -> float | int:
    result = x / y
    return int(result) if isinstance(x, int) and isinstance(y, int) and x % y == 0 else result


# -- encoding -----------------------------------------------------------------------------------------------------


def h_encode64(o: Options, value: Any = None, *_: Any) -> Any:
    """Base64 of the UTF-8 text."""
    text = _text(value)
    return None if text is None else base64.b64encode(text.encode("utf-8")).decode("ascii")


def h_decode64(o: Options, value: Any = None, *_: Any) -> Any:
    """Text from Base64 (UTF-8; invalid input renders empty)."""
    text = _text(value)
    if text is None:
        return None
    try:
        return base64.b64decode(text.encode("ascii") + b"=" * (-len(text) % 4), validate=False).decode(
            "utf-8", "replace"
        )
    except (ValueError, UnicodeEncodeError):
        return None


def _digest(name: str) -> Helper:
    def helper(o: Options, value: Any = None, *_: Any) -> Any:
        text = _text(value)
        return None if text is None else hashlib.new(name, text.encode("utf-8")).hexdigest()

    helper.__doc__ = f"Hex {name} digest of the UTF-8 text."
    return helper


def h_uuid(o: Options, *_: Any) -> Any:
    """A random (version 4) UUID."""
    return str(_uuid.uuid4())


PINPOINT_HELPERS: dict[str, Helper] = {
    **BUILTIN_HELPERS,
    "and": h_and,
    "or": h_or,
    "not": h_not,
    "eq": h_eq,
    "neq": h_neq,
    "gt": _ordering(lambda c: c > 0),
    "gte": _ordering(lambda c: c >= 0),
    "lt": _ordering(lambda c: c < 0),
    "lte": _ordering(lambda c: c <= 0),
    "abbreviate": h_abbreviate,
    "capitalize": h_capitalize,
    "capitalizeFirst": h_capitalize_first,
    "center": h_center,
    "cut": h_cut,
    "dateFormat": h_date_format,
    "inflect": h_inflect,
    "join": h_join,
    "ljust": h_ljust,
    "rjust": h_rjust,
    "lower": h_lower,
    "upper": h_upper,
    "now": h_now,
    "ordinalize": h_ordinalize,
    "replace": h_replace,
    "slugify": h_slugify,
    "stripTags": h_strip_tags,
    "substring": h_substring,
    "yesno": h_yesno,
    "add": _arith(lambda x, y: x + y),
    "subtract": _arith(lambda x, y: x - y),
    "multiply": _arith(lambda x, y: x * y),
    "divide": _arith(_divide),
    "modulo": _arith(math.fmod),
    "ceiling": _unary(math.ceil),
    "floor": _unary(math.floor),
    "round": _unary(lambda x: math.floor(x + 0.5)),
    "encode64": h_encode64,
    "decode64": h_decode64,
    "md5": _digest("md5"),
    "sha256": _digest("sha256"),
    "sha512": _digest("sha512"),
    "uuid": h_uuid,
}
