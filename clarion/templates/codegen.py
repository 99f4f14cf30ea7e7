"""Code generator: a parsed template becomes Python source, compiled once with `compile()`.

Each Handlebars program (the template, a block body, an `{{else}}` body) becomes one Python function
`(st, ctx, depths, data, bps) -> str`. Runs of text and mustaches collapse into a single f-string, `#if`/`#unless`
are inlined as Python `if` statements, and helpers are resolved at compile time, which is what makes a typical
email render in a few microseconds.

The budget (budget.py) is paid where it is cheap: an inlined `{{#each}}` charges its whole list as steps before
looping and measures its output once per iteration; a program measures its output after every `_CHECK_EVERY`
values it appends; helper calls, block bodies and partials are metered in runtime.py. What can never render —
a helper that does not exist, a partial nothing declares, a partial that always calls itself — is refused here,
with the line and column, instead of failing every send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clarion.templates import runtime
from clarion.templates.parser import (
    Block,
    Comment,
    Content,
    Expr,
    Literal,
    Mustache,
    Partial,
    Path,
    Program,
    Statement,
    SubExpr,
    syntax_error,
)

__all__ = ["INLINE_IF", "generate"]

# Built-in helpers the generator may inline (`{{#if}}` → Python `if`, `{{#each list}}` → `for`) when they are
# the registered ones; helpers.py fills this in.
INLINE_IF: dict[str, Callable[..., Any]] = {}

_MAX_INLINE_DEPTH = 40  # Python refuses source nested ~100 levels deep; deeper blocks become function calls.
_CHECK_EVERY = 8  # values a program appends between two measures of its output
_CHECK = "if len(_o) > st.limit: raise st.too_long(len(_o))"


class _Refused(Exception):
    """Something that compiles in Handlebars.js but can never render; `pos` is where it is in the source."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def _literal_text(text: str) -> str:
    """Text as the inside of a single-quoted f-string (ASCII-only, braces doubled)."""
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return escaped.replace("{", "{{").replace("}", "}}")


def _step(code: str, key: str) -> str:
    """Inline `code.key` (runtime.get without the call): dicts directly, anything else through runtime.prop."""
    if code.isidentifier():
        return f"({code}.get({key!r}) if type({code}) is dict else _prop({code}, {key!r}))"
    return f"(_t.get({key!r}) if type(_t := {code}) is dict else _prop(_t, {key!r}))"


def _as_path(node: Path | Literal) -> Path:
    """Handlebars' transformLiteralToPath: `{{"x"}}` / `{{1}}` in helper position name a one-part path."""
    if isinstance(node, Path):
        return node
    return Path(False, 0, [node.original], node.original, node.pos)


def _walk(node: Any) -> Any:
    """Every AST node under `node` (programs, statements, expressions)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        yield item
        if isinstance(item, Program):
            stack.extend(item.body)
        elif isinstance(item, Block):
            stack.extend([item.path, *item.params, *(v for _, v in item.hash), item.program, item.inverse])
        elif isinstance(item, (Mustache, SubExpr)):
            stack.extend([item.path, *item.params, *(v for _, v in item.hash)])
        elif isinstance(item, Partial):
            stack.extend([item.name, *item.params, *(v for _, v in item.hash)])


class _Gen:
    def __init__(self, helpers: Mapping[str, Callable[..., Any]], uses_depths: bool, uses_block_params: bool) -> None:
        self.helpers = helpers
        self.uses_depths = uses_depths
        self.uses_block_params = uses_block_params
        self.functions: list[str] = []
        self.counter = 0
        self.temps = 0
        self.scopes: list[list[str] | None] = []
        self.hoists: list[dict[str, str]] = []  # per function: first path segment -> local holding ctx[segment]
        self.unchecked: list[int] = []  # per function: values appended since its output was last measured
        self.namespace: dict[str, Any] = {
            "_e": runtime.escape,
            "_s": runtime.to_str,
            "_g": runtime.get,
            "_prop": runtime.prop,
            "_dep": runtime.depth,
            "_dp": runtime.data_path,
            "_bp": runtime.block_param,
            "_if": runtime.if_true,
            "_call": runtime.call,
            "_Prog": runtime.Prog,
            "_NOOP": runtime.NOOP,
            "_Options": runtime.Options,
            "_bhm": runtime.block_helper_missing,
            "_partial": runtime.partial,
            "_frame": runtime.frame,
            "_PRIMITIVES": runtime.PRIMITIVES,
        }
        self.helper_vars: dict[str, str] = {}

    # -- functions -----------------------------------------------------------------------------------------------
    def function(self, program: Program) -> str:
        name = f"_p{self.counter}"
        self.counter += 1
        self.scopes.insert(0, program.block_params)
        lines = [f"def {name}(st, ctx, depths, data, bps):"]
        decorators = [node for node in program.body if isinstance(node, Block) and node.decorator]
        ind = 1
        if decorators:
            entries = []
            for node in decorators:
                assert node.program is not None and isinstance(node.params[0], Literal)
                key = runtime.to_str(node.params[0].value)
                entries.append(f"{key!r}: _Prog({self.function(node.program)}, st, _outer, data, bps)")
            lines.append("    _outer = st.outer")
            lines.append("    _sp = st.partials")
            lines.append(f"    st.partials = {{**_sp, {', '.join(entries)}}}")
            lines.append("    try:")
            ind = 2
        lines.append("    " * ind + "_o = ''")
        header = len(lines)
        self.hoists.insert(0, {})
        self.unchecked.insert(0, 0)
        self.statements(program.body, lines, ind)
        self.unchecked.pop(0)
        hoisted = self.hoists.pop(0)
        lines[header:header] = [f"{'    ' * ind}{var} = {_step('ctx', key)}" for key, var in hoisted.items()]
        lines.append("    " * ind + "return _o")
        if decorators:
            lines.append("    finally:")
            lines.append("        st.partials = _sp")
        self.scopes.pop(0)
        self.functions.append("\n".join(lines))
        return name

    def statements(self, body: list[Statement], lines: list[str], ind: int) -> None:
        run: list[tuple[bool, str]] = []
        for node in body:
            if isinstance(node, Content):
                if node.value:
                    run.append((True, node.value))
            elif isinstance(node, Mustache):
                value = self.call_or_lookup(_as_path(node.path), node.params, node.hash, sexpr=False)
                run.append((False, f"_e({value})" if node.escaped else f"_s({value})"))
            elif isinstance(node, Partial):
                run.append((False, self.partial(node)))
            elif isinstance(node, Block):
                if node.decorator:
                    continue
                self.flush(run, lines, ind)
                run = []
                self.block(node, lines, ind)
            else:
                assert isinstance(node, Comment)
        self.flush(run, lines, ind)

    def flush(self, run: list[tuple[bool, str]], lines: list[str], ind: int) -> None:
        """Append a run of text and values; a long run is cut into f-strings of at most `_CHECK_EVERY` values
        (Python compiles one huge f-string in quadratic time), each followed by its output measure."""
        start = values = 0
        for i, (is_text, _) in enumerate(run):
            if not is_text:
                if values == _CHECK_EVERY:
                    self.append_run(run[start:i], values, lines, ind)
                    start = i
                    values = 0
                values += 1
        self.append_run(run[start:], values, lines, ind)

    def append_run(self, run: list[tuple[bool, str]], values: int, lines: list[str], ind: int) -> None:
        if not run:
            return
        pad = "    " * ind
        if not values:
            lines.append(f"{pad}_o += {''.join(text for _, text in run)!r}")
            return
        self.appended(values)
        if len(run) == 1:
            lines.append(f"{pad}_o += {run[0][1]}")
            self.measure(lines, pad)
            return
        pieces = []
        for is_text, text in run:
            if is_text:
                pieces.append(_literal_text(text))
            else:
                var = f"_v{self.temps}"
                self.temps += 1
                lines.append(f"{pad}{var} = {text}")
                pieces.append("{" + var + "}")
        lines.append(f"{pad}_o += f'{''.join(pieces)}'")
        self.measure(lines, pad)

    def appended(self, values: int) -> None:
        self.unchecked[0] += values

    def measure(self, lines: list[str], pad: str) -> None:
        """Measure the output once enough values were appended since the last measure (a value can be long)."""
        if self.unchecked[0] >= _CHECK_EVERY:
            lines.append(f"{pad}{_CHECK}")
            self.unchecked[0] = 0

    # -- blocks --------------------------------------------------------------------------------------------------
    def block(self, node: Block, lines: list[str], ind: int) -> None:
        path = _as_path(node.path)
        pad = "    " * ind
        name = path.parts[0] if path.simple and self.block_param(path) is None else None
        helper = self.helpers.get(name) if name is not None else None
        if (
            name in ("if", "unless")
            and helper is not None
            and helper is INLINE_IF.get(name)
            and len(node.params) == 1
            and all(key == "includeZero" for key, _ in node.hash)
            and ind < _MAX_INLINE_DEPTH
            and self.inlinable(node.program)
            and self.inlinable(node.inverse)
        ):
            args = [self.expr(node.params[0]), *(self.expr(value) for _, value in node.hash)]
            test = f"_if({', '.join(args)})"
            lines.append(f"{pad}if {'not ' if name == 'unless' else ''}{test}:")
            self.branch(node.program, lines, ind + 1)
            if node.inverse is not None and node.inverse.body:
                lines.append(f"{pad}else:")
                self.branch(node.inverse, lines, ind + 1)
            return
        if (
            name == "each"
            and helper is not None
            and helper is INLINE_IF.get("each")
            and len(node.params) == 1
            and not node.hash
            and node.program is not None
            and ind < _MAX_INLINE_DEPTH
            and self.inlinable(node.program)
        ):
            self.inline_each(node, lines, ind)
            return
        fn = self.program_ref(node.program)
        inverse = self.program_ref(node.inverse)
        if helper is not None:
            value = self.helper_call(name or "", node.params, node.hash, fn, inverse)
            lines.append(f"{pad}_o += _s({value})")
        elif node.params or node.hash:
            raise _missing_helper(path)
        else:
            value = self.lookup(path)
            options = f"_Options(st, ctx, {{}}, data, {fn}, {inverse}, {path.original!r})"
            lines.append(f"{pad}_o += _bhm({options}, {value})")
        self.appended(1)
        self.measure(lines, pad)

    def inline_each(self, node: Block, lines: list[str], ind: int) -> None:
        """`{{#each list}}` as a Python loop over the body function; objects and `{{else}}` go through the helper."""
        assert node.program is not None
        pad = "    " * ind
        n = self.temps
        self.temps += 1
        body = self.function(node.program)
        depths = "None"
        if self.uses_depths:  # runtime.Prog's rule: push only when the context changes
            same = f"_it{n} is depths[0] or (type(_it{n}) in _PRIMITIVES and _it{n} == depths[0])"
            depths = f"(depths if {same} else (_it{n}, *depths))"
        bps = f"((_it{n}, _i{n}), *bps)" if self.uses_block_params else "None"
        # Bodies that never read @data (and call no partials) skip building the @index/@key frame.
        needs_data = any(
            (isinstance(item, Path) and item.data) or isinstance(item, Partial) for item in _walk(node.program)
        )
        lines.append(f"{pad}_x{n} = {self.expr(node.params[0])}")
        lines.append(f"{pad}if type(_x{n}) is list and _x{n}:")
        lines.append(f"{pad}    st.fuel -= len(_x{n})")
        lines.append(f"{pad}    if st.fuel < 0:")
        lines.append(f"{pad}        st.refuel()")
        lines.append(f"{pad}    _lim = st.limit")
        if needs_data:
            lines.append(f"{pad}    _d{n} = _frame(data)")
            lines.append(f"{pad}    _last{n} = len(_x{n}) - 1")
            lines.append(f"{pad}    for _i{n}, _it{n} in enumerate(_x{n}):")
            lines.append(f"{pad}        _d{n}['key'] = _d{n}['index'] = _i{n}")
            lines.append(f"{pad}        _d{n}['first'] = _i{n} == 0")
            lines.append(f"{pad}        _d{n}['last'] = _i{n} == _last{n}")
            lines.append(f"{pad}        _o += {body}(st, _it{n}, {depths}, _d{n}, {bps})")
        elif self.uses_block_params:
            lines.append(f"{pad}    for _i{n}, _it{n} in enumerate(_x{n}):")
            lines.append(f"{pad}        _o += {body}(st, _it{n}, {depths}, data, {bps})")
        else:
            lines.append(f"{pad}    for _it{n} in _x{n}:")
            lines.append(f"{pad}        _o += {body}(st, _it{n}, {depths}, data, None)")
        lines.append(f"{pad}        if len(_o) > _lim: raise st.too_long(len(_o))")
        lines.append(f"{pad}else:")
        fn = f"_Prog({body}, st, depths, data, bps)"
        value = self.helper_call("each", [], [], fn, self.program_ref(node.inverse), arg_codes=[f"_x{n}"])
        lines.append(f"{pad}    _o += _s({value})")
        self.appended(1)
        self.measure(lines, pad)

    def branch(self, program: Program | None, lines: list[str], ind: int) -> None:
        before = len(lines)
        if program is not None:
            self.statements(program.body, lines, ind)
        if len(lines) == before:
            lines.append("    " * ind + "pass")

    @staticmethod
    def inlinable(program: Program | None) -> bool:
        if program is None:
            return True
        if program.block_params:
            return False
        return not any(isinstance(node, Block) and node.decorator for node in program.body)

    def program_ref(self, program: Program | None) -> str:
        if program is None:
            return "_NOOP"
        return f"_Prog({self.function(program)}, st, depths, data, bps)"

    # -- expressions ---------------------------------------------------------------------------------------------
    def call_or_lookup(self, path: Path, params: list[Expr], hash_: list[tuple[str, Expr]], *, sexpr: bool) -> str:
        """A mustache or subexpression: helper call if `path` names a helper, else a lookup (or nothing)."""
        if path.simple and self.block_param(path) is None and path.parts[0] in self.helpers:
            return self.helper_call(path.parts[0], params, hash_, "None", "None")
        if params or hash_ or sexpr:
            raise _missing_helper(path)
        return self.lookup(path)

    def helper_call(
        self,
        name: str,
        params: list[Expr],
        hash_: list[tuple[str, Expr]],
        fn: str,
        inverse: str,
        arg_codes: list[str] | None = None,
    ) -> str:
        var = self.helper_vars.get(name)
        if var is None:
            var = f"_h{len(self.helper_vars)}"
            self.helper_vars[name] = var
            self.namespace[var] = self.helpers[name]
        args = arg_codes if arg_codes is not None else [self.expr(param) for param in params]
        args_code = "(" + "".join(f"{arg}, " for arg in args) + ")"
        hash_code = "{" + ", ".join(f"{key!r}: {self.expr(value)}" for key, value in hash_) + "}"
        return f"_call(st, {var}, ctx, data, {args_code}, {hash_code}, {fn}, {inverse}, {name!r})"

    def expr(self, node: Expr) -> str:
        if isinstance(node, Literal):
            if node.kind in ("null", "undefined"):
                return "None"
            return repr(node.value)
        if isinstance(node, SubExpr):
            return self.call_or_lookup(_as_path(node.path), node.params, node.hash, sexpr=True)
        return self.lookup(node)

    def block_param(self, path: Path) -> tuple[int, int] | None:
        if path.depth or path.data or path.scoped or not path.parts:
            return None
        name = path.parts[0]
        for level, names in enumerate(self.scopes):
            if names and name in names:
                return level, names.index(name)
        return None

    def lookup(self, path: Path) -> str:
        parts = path.parts
        if path.data:
            return f"_dp(data, {path.depth}, {tuple(parts)!r})"
        ref = self.block_param(path)
        if ref is not None:
            code = f"_bp(bps, {ref[0]}, {ref[1]})"
            parts = parts[1:]
        elif path.depth == 0 and len(parts) >= 2:
            # Paths sharing a first segment (Attributes.X, Attributes.Y) look it up once per function.
            hoisted = self.hoists[0]
            code = hoisted.get(parts[0]) or hoisted.setdefault(parts[0], f"_c{self.temps}")
            self.temps += 1
            parts = parts[1:]
        else:
            code = "ctx" if path.depth == 0 else f"_dep(depths, {path.depth})"
        for part in parts:
            code = _step(code, part)
        return code

    def partial(self, node: Partial) -> str:
        if isinstance(node.name, SubExpr):
            name = self.expr(node.name)
        elif isinstance(node.name, Literal):
            name = repr(runtime.to_str(node.name.value))
        else:
            name = repr(node.name.original)
        context = self.expr(node.params[0]) if node.params else "ctx"
        hash_code = "{" + ", ".join(f"{key!r}: {self.expr(value)}" for key, value in node.hash) + "}"
        return f"_partial(st, {name}, {context}, {hash_code if node.hash else 'None'}, data, {node.indent!r})"


def _missing_helper(path: Path) -> _Refused:
    return _Refused(
        f"{path.original} is not a helper (Handlebars.js fails with 'Missing helper'); the helpers are Pinpoint's "
        "(docs/templates.md)",
        path.pos,
    )


def _partial_name(node: Partial) -> str | None:
    """The name a partial call uses, when the template spells it out (a subexpression decides at render time)."""
    if isinstance(node.name, SubExpr):
        return None
    if isinstance(node.name, Literal):
        return runtime.to_str(node.name.value)
    return node.name.original


def _check_partials(program: Program) -> None:
    """Refuse partial calls that cannot render: a name that no `{{#*inline}}` declares (Handlebars.js fails with
    'The partial could not be found'), and partials that call themselves on every path (they never finish)."""
    declared: dict[str, list[Block]] = {}
    for node in _walk(program):
        if isinstance(node, Block) and node.decorator:
            assert isinstance(node.params[0], Literal)
            declared.setdefault(runtime.to_str(node.params[0].value), []).append(node)
    for node in _walk(program):
        if isinstance(node, Partial):
            name = _partial_name(node)
            if name is not None and name not in declared:
                raise _Refused(f"partial {name!r} is not declared by any {{{{#*inline {name!r}}}}}", node.pos)
    # A partial never finishes when every declaration of it calls, outside any block, a partial that never
    # finishes: start from all of them and drop those with a way out until nothing changes.
    calls = {
        name: [
            {_partial_name(statement) for statement in block.program.body if isinstance(statement, Partial)}
            for block in blocks
            if block.program is not None
        ]
        for name, blocks in declared.items()
    }
    endless = set(declared)
    changed = True
    while changed:
        changed = False
        for name in sorted(endless):
            if not calls[name] or not all(called & endless for called in calls[name]):
                endless.discard(name)
                changed = True
    if endless:
        pos, name = min((block.pos, name) for name in endless for block in declared[name])
        raise _Refused(
            f"partial {name!r} calls itself on every path (through {{{{> ...}}}} outside any block), so it never "
            "finishes",
            pos,
        )


def generate(
    program: Program, helpers: Mapping[str, Callable[..., Any]], source: str
) -> tuple[str, str, dict[str, Any]]:
    """Python source for a parsed template: (source, name of the root function, globals it needs).

    Raises TemplateSyntaxError for what Handlebars.js compiles but could never render.
    """
    try:
        return _generate(program, helpers)
    except _Refused as refused:
        raise syntax_error(source, str(refused), refused.pos) from None


def _generate(program: Program, helpers: Mapping[str, Callable[..., Any]]) -> tuple[str, str, dict[str, Any]]:
    _check_partials(program)
    nodes = list(_walk(program))
    uses_depths = any(isinstance(node, Path) and node.depth > 0 and not node.data for node in nodes)
    uses_block_params = any(isinstance(node, Program) and node.block_params for node in nodes)
    gen = _Gen(helpers, uses_depths, uses_block_params)
    root = gen.function(program)
    gen.namespace["_DEPTHS"] = uses_depths
    gen.namespace["_BLOCK_PARAMS"] = uses_block_params
    return "\n\n".join(gen.functions) + "\n", root, gen.namespace
