"""Parser for Handlebars.js 4.7 templates: tokens → AST, then Handlebars' whitespace-control pass.

The AST and the standalone-line/`~` stripping are ports of handlebars.yy, helpers.js and whitespace-control.js,
because output whitespace (a `{{#if}}` alone on its line vanishes with its newline) must match Handlebars.js
byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from clarion.templates.lexer import JS_WS, LexError, Token, tokenize

__all__ = [
    "Block",
    "Comment",
    "Content",
    "Expr",
    "Literal",
    "Mustache",
    "Partial",
    "Path",
    "Program",
    "SubExpr",
    "TemplateSyntaxError",
    "parse",
    "syntax_error",
]


class TemplateSyntaxError(ValueError):
    """A template that Handlebars.js would refuse to compile; the message names line and column (1-based)."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.reason = message


@dataclass(slots=True)
class Strip:
    """`~` flags of one tag: `open` strips whitespace before it, `close` after it."""

    open: bool = False
    close: bool = False


@dataclass(slots=True)
class Path:
    """`a.b`, `../x`, `@index`, `this`: lookups start at the context `depth` levels up (or the data frame)."""

    data: bool
    depth: int
    parts: list[str]
    original: str
    pos: int

    @property
    def scoped(self) -> bool:
        """Handlebars' scopedId: `./x`, `this.x` never resolve to helpers (same regex, quirks included)."""
        return re.search(r"^\.|this\b", self.original) is not None

    @property
    def simple(self) -> bool:
        """A bare name like `foo`: may be a helper call or a context lookup."""
        return len(self.parts) == 1 and not self.scoped and not self.depth and not self.data


@dataclass(slots=True)
class Literal:
    """String, number, boolean, null or undefined literal (`kind`); `original` is what a path made of it names."""

    kind: str
    value: object
    original: str
    pos: int


@dataclass(slots=True)
class SubExpr:
    """`(helper arg key=value)`: always a helper call."""

    path: Path | Literal
    params: list[Expr]
    hash: list[tuple[str, Expr]]
    pos: int


Expr = Union[Path, Literal, SubExpr]  # noqa: UP007 - used at runtime in isinstance-free annotations


@dataclass(slots=True)
class Content:
    """Literal template text; `value` is what is left after whitespace control, `original` the source text."""

    value: str
    original: str
    pos: int
    left_stripped: bool = False
    right_stripped: bool = False


@dataclass(slots=True)
class Comment:
    """`{{! }}` / `{{!-- --}}`: no output, but takes part in standalone-line removal."""

    strip: Strip
    pos: int


@dataclass(slots=True)
class Mustache:
    """`{{expr}}` (escaped) or `{{{expr}}}` / `{{& expr}}` (raw)."""

    path: Path | Literal
    params: list[Expr]
    hash: list[tuple[str, Expr]]
    escaped: bool
    strip: Strip
    pos: int


@dataclass(slots=True)
class Program:
    """A sequence of statements: the template, a block body or an `{{else}}` body."""

    body: list[Statement]
    block_params: list[str] | None = None
    chained: bool = False


@dataclass(slots=True)
class Block:
    """`{{#name ...}}program{{else}}inverse{{/name}}`; `decorator` marks `{{#* inline "n"}}`."""

    path: Path | Literal
    params: list[Expr]
    hash: list[tuple[str, Expr]]
    program: Program | None
    inverse: Program | None
    open_strip: Strip
    inverse_strip: Strip | None
    close_strip: Strip | None
    pos: int
    decorator: bool = False


@dataclass(slots=True)
class Partial:
    """`{{> name [context] [key=value]}}`; `indent` is set for standalone partials (applied to each line)."""

    name: Path | Literal | SubExpr
    params: list[Expr]
    hash: list[tuple[str, Expr]]
    strip: Strip
    pos: int
    indent: str = ""


Statement = Union[Content, Comment, Mustache, Block, Partial]  # noqa: UP007


@dataclass(slots=True)
class _Chain:
    """An `{{else}}` / `{{else if ...}}` continuation while parsing (grammar's inverseAndProgram/inverseChain)."""

    strip: Strip
    program: Program
    chain: bool = False
    pos: int = 0


@dataclass(slots=True)
class _Open:
    path: Path | Literal
    params: list[Expr]
    hash: list[tuple[str, Expr]]
    block_params: list[str] | None
    strip: Strip
    decorator: bool
    pos: int
    tag: str = field(default="#")


_DESCRIBE = {
    "CLOSE": "'}}'",
    "CLOSE_UNESCAPED": "'}}}'",
    "CLOSE_SEXPR": "')'",
    "EOF": "end of template",
    "EQUALS": "'='",
    "SEP": "'.'",
    "OPEN_SEXPR": "'('",
    "CLOSE_BLOCK_PARAMS": "'|'",
}


def _describe(tok: Token) -> str:
    if tok.kind in ("EOF",):
        return "end of template"
    return repr(tok.text) if tok.text else tok.kind


def _flags(open_text: str, close_text: str) -> Strip:
    """handlebars' stripFlags: `~` right after `{{` and right before `}}`."""
    return Strip(len(open_text) > 2 and open_text[2] == "~", len(close_text) >= 3 and close_text[-3] == "~")


def syntax_error(src: str, message: str, pos: int) -> TemplateSyntaxError:
    """The error for `message` at offset `pos` of `src`, with its line and column."""
    line = src.count("\n", 0, pos) + 1
    column = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return TemplateSyntaxError(message, line, column)


def _js_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _as_written(text: str) -> str:
    """A number literal in the form JavaScript prints numbers: no leading zeros, no trailing fraction zeros."""
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, fraction = digits.partition(".")
    written = (whole.lstrip("0") or "0") + ("." + fraction.rstrip("0") if fraction.rstrip("0") else "")
    return "0" if written == "0" else sign + written


def _number_original(value: int | float) -> str:
    from clarion.templates.runtime import to_str

    return to_str(value)


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        try:
            self.tokens = tokenize(src)
        except LexError as exc:
            raise self.error(str(exc), exc.pos) from None
        self.i = 0

    # -- token helpers -------------------------------------------------------------------------------------------
    def error(self, message: str, pos: int) -> TemplateSyntaxError:
        return syntax_error(self.src, message, pos)

    def where(self, pos: int) -> str:
        line = self.src.count("\n", 0, pos) + 1
        return f"line {line}, column {pos - (self.src.rfind(chr(10), 0, pos) + 1) + 1}"

    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def expect(self, kind: str, context: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise self.error(f"expected {_DESCRIBE.get(kind, kind)} {context}, got {_describe(tok)}", tok.pos)
        return self.next()

    # -- grammar -------------------------------------------------------------------------------------------------
    def parse_root(self) -> Program:
        program = self.program()
        tok = self.peek()
        if tok.kind == "OPEN_ENDBLOCK":
            name = self.peek(1).text
            raise self.error(f"unexpected {{{{/{name}}}}} without a matching open block", tok.pos)
        if tok.kind in ("INVERSE", "OPEN_INVERSE_CHAIN"):
            raise self.error("unexpected {{else}} outside a block", tok.pos)
        return program

    def program(self) -> Program:
        body: list[Statement] = []
        while True:
            tok = self.peek()
            kind = tok.kind
            if kind in ("EOF", "OPEN_ENDBLOCK", "INVERSE", "OPEN_INVERSE_CHAIN"):
                return Program(body)
            self.next()
            if kind == "CONTENT":
                body.append(Content(tok.text, tok.text, tok.pos))
            elif kind == "COMMENT":
                body.append(Comment(_flags(tok.text, tok.text), tok.pos))
            elif kind in ("OPEN", "OPEN_UNESCAPED"):
                body.append(self.mustache(tok))
            elif kind in ("OPEN_BLOCK", "OPEN_INVERSE"):
                body.append(self.block(tok))
            elif kind == "OPEN_PARTIAL":
                body.append(self.partial(tok))
            elif kind == "OPEN_PARTIAL_BLOCK":
                raise self.error("partial blocks ({{#> name}}) are not supported", tok.pos)
            elif kind in ("OPEN_RAW_BLOCK", "CLOSE_RAW_BLOCK"):
                raise self.error("raw blocks ({{{{raw}}}}) are not supported", tok.pos)
            else:
                raise self.error(f"unexpected {_describe(tok)}", tok.pos)

    def mustache(self, open_tok: Token) -> Mustache:
        if "*" in open_tok.text:
            raise self.error("decorators ({{* name}}) are not supported", open_tok.pos)
        path = self.helper_name("after '{{'")
        params, hash_ = self.params_and_hash()
        unescaped = open_tok.kind == "OPEN_UNESCAPED"
        close = self.expect("CLOSE_UNESCAPED" if unescaped else "CLOSE", "to close the mustache")
        flag = open_tok.text[3:4] or open_tok.text[2:3]
        escaped = flag not in ("{", "&")
        return Mustache(path, params, hash_, escaped, _flags(open_tok.text, close.text), open_tok.pos)

    def partial(self, open_tok: Token) -> Partial:
        name: Path | Literal | SubExpr = (
            self.sexpr() if self.peek().kind == "OPEN_SEXPR" else self.helper_name("after '{{>'")
        )
        params, hash_ = self.params_and_hash()
        close = self.expect("CLOSE", "to close the partial")
        if len(params) > 1:
            raise self.error(f"unsupported number of partial arguments: {len(params)}", open_tok.pos)
        return Partial(name, params, hash_, _flags(open_tok.text, close.text), open_tok.pos)

    def open_tag(self, open_tok: Token) -> _Open:
        path = self.helper_name(f"after '{open_tok.text.strip()}'")
        params, hash_ = self.params_and_hash()
        block_params = None
        if self.peek().kind == "OPEN_BLOCK_PARAMS":
            self.next()
            block_params = []
            while self.peek().kind == "ID":
                block_params.append(self.next().text)
            if not block_params:
                raise self.error("expected a block parameter name after 'as |'", self.peek().pos)
            self.expect("CLOSE_BLOCK_PARAMS", "to close the block parameters")
        close = self.expect("CLOSE", "to close the block tag")
        return _Open(
            path,
            params,
            hash_,
            block_params,
            _flags(open_tok.text, close.text),
            "*" in open_tok.text,
            open_tok.pos,
        )

    def block(self, open_tok: Token) -> Block:
        inverted = open_tok.kind == "OPEN_INVERSE"
        opened = self.open_tag(open_tok)
        name = _original(opened.path)
        program = self.program()
        chain: _Chain | None = None
        tok = self.peek()
        if tok.kind == "OPEN_INVERSE_CHAIN" and not inverted:
            chain = self.inverse_chain()
        elif tok.kind == "INVERSE":
            self.next()
            chain = _Chain(_flags(tok.text, tok.text), self.program(), pos=tok.pos)
        tok = self.peek()
        sigil = "^" if inverted else "#"
        if tok.kind == "EOF":
            raise self.error(
                f"unclosed {{{{{sigil}{name}}}}} block opened at {self.where(opened.pos)}",
                tok.pos,
            )
        if tok.kind != "OPEN_ENDBLOCK":
            raise self.error(f"unexpected {tok.text.strip()!r} in {{{{{sigil}{name}}}}} block", tok.pos)
        self.next()
        close_path = self.helper_name("after '{{/'")
        close_tok = self.expect("CLOSE", "to close the end tag")
        closing = _original(close_path)
        if closing != name:
            where = self.where(opened.pos)
            raise self.error(f"{{{{/{closing}}}}} does not match {{{{{sigil}{name}}}}} opened at {where}", tok.pos)
        return self.prepare_block(opened, program, chain, _flags(tok.text, close_tok.text), inverted)

    def inverse_chain(self) -> _Chain:
        tok = self.next()  # OPEN_INVERSE_CHAIN
        opened = self.open_tag(tok)
        program = self.program()
        nested: _Chain | None = None
        nxt = self.peek()
        if nxt.kind == "OPEN_INVERSE_CHAIN":
            nested = self.inverse_chain()
        elif nxt.kind == "INVERSE":
            self.next()
            nested = _Chain(_flags(nxt.text, nxt.text), self.program(), pos=nxt.pos)
        inner = self.prepare_block(opened, program, nested, nested.strip if nested else None, False)
        return _Chain(opened.strip, Program([inner], chained=True), chain=True, pos=tok.pos)

    def prepare_block(
        self, opened: _Open, program: Program, chain: _Chain | None, close_strip: Strip | None, inverted: bool
    ) -> Block:
        program.block_params = opened.block_params
        inverse: Program | None = None
        inverse_strip: Strip | None = None
        if chain is not None:
            if opened.decorator:
                raise self.error("unexpected {{else}} in a decorator block", chain.pos)
            if chain.chain:
                first = chain.program.body[0]
                assert isinstance(first, Block)
                first.close_strip = close_strip
            inverse_strip = chain.strip
            inverse = chain.program
        main: Program | None = program
        if inverted:
            main, inverse = inverse, program
        if opened.decorator:
            name = _original(opened.path)
            if name != "inline":
                raise self.error(f"unsupported decorator {{{{#*{name}}}}} (only inline partials)", opened.pos)
            if len(opened.params) != 1 or not isinstance(opened.params[0], Literal):
                raise self.error('inline partials need a literal name: {{#* inline "name"}}', opened.pos)
        return Block(
            opened.path,
            opened.params,
            opened.hash,
            main,
            inverse,
            opened.strip,
            inverse_strip,
            close_strip,
            opened.pos,
            opened.decorator,
        )

    def params_and_hash(self) -> tuple[list[Expr], list[tuple[str, Expr]]]:
        params: list[Expr] = []
        hash_: list[tuple[str, Expr]] = []
        while True:
            tok = self.peek()
            if tok.kind == "ID" and self.peek(1).kind == "EQUALS":
                break
            if tok.kind == "OPEN_SEXPR":
                params.append(self.sexpr())
            elif tok.kind in ("ID", "DATA", "STRING", "NUMBER", "BOOLEAN", "UNDEFINED", "NULL"):
                params.append(self.helper_name(""))
            else:
                return params, hash_
        while self.peek().kind == "ID" and self.peek(1).kind == "EQUALS":
            key = self.next().text
            self.next()
            if self.peek().kind == "OPEN_SEXPR":
                hash_.append((key, self.sexpr()))
            else:
                hash_.append((key, self.helper_name(f"after '{key}='")))
        return params, hash_

    def sexpr(self) -> SubExpr:
        tok = self.expect("OPEN_SEXPR", "")
        path = self.helper_name("after '('")
        params, hash_ = self.params_and_hash()
        self.expect("CLOSE_SEXPR", "to close the subexpression")
        return SubExpr(path, params, hash_, tok.pos)

    def helper_name(self, context: str) -> Path | Literal:
        tok = self.peek()
        kind = tok.kind
        if kind == "ID":
            return self.path(False, tok.pos)
        if kind == "DATA":
            self.next()
            if self.peek().kind != "ID":
                raise self.error(f"expected a name after '@', got {_describe(self.peek())}", self.peek().pos)
            return self.path(True, tok.pos)
        self.next()
        if kind == "STRING":
            return Literal("string", tok.text, tok.text, tok.pos)
        if kind == "NUMBER":
            value = _js_number(tok.text)
            original = _number_original(value)
            if original != _as_written(tok.text):
                # JavaScript would silently read it as another number (Infinity, or with digits lost).
                raise self.error(
                    f"the number {tok.text[:40]}{'...' if len(tok.text) > 40 else ''} cannot be represented "
                    f"exactly (Handlebars.js would use {original[:40]})",
                    tok.pos,
                )
            return Literal("number", value, original, tok.pos)
        if kind == "BOOLEAN":
            return Literal("boolean", tok.text == "true", tok.text, tok.pos)
        if kind == "UNDEFINED":
            return Literal("undefined", None, "undefined", tok.pos)
        if kind == "NULL":
            return Literal("null", None, "null", tok.pos)
        raise self.error(f"expected a name or value {context}, got {_describe(tok)}".replace("  ", " "), tok.pos)

    def path(self, data: bool, pos: int) -> Path:
        segments: list[tuple[str, str, str]] = []  # (part, original text, separator)
        tok = self.next()
        segments.append((_id(tok.text), tok.text, ""))
        while self.peek().kind == "SEP":
            sep = self.next().text
            tok = self.peek()
            if tok.kind != "ID":
                raise self.error(f"expected a name after {sep!r}, got {_describe(tok)}", tok.pos)
            self.next()
            segments.append((_id(tok.text), tok.text, sep))
        original = "@" if data else ""
        parts: list[str] = []
        depth = 0
        for part, text, sep in segments:
            original += sep + part
            is_literal = text != part
            if not is_literal and part in ("..", ".", "this"):
                if parts:
                    raise self.error(f"invalid path: {original}", pos)
                if part == "..":
                    depth += 1
            else:
                parts.append(part)
        return Path(data, depth, parts, original, pos)


def _id(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == "[" and text[-1] == "]" else text


def _original(node: Path | Literal) -> str:
    return node.original


# -- whitespace control (port of handlebars/compiler/whitespace-control.js) --------------------------------------

_PREV_WS = re.compile(rf"\r?\n[{JS_WS}]*\Z")
_PREV_WS_ROOT = re.compile(rf"(?:^|\r?\n)[{JS_WS}]*\Z")
_NEXT_WS = re.compile(rf"[{JS_WS}]*?\r?\n")
_NEXT_WS_ROOT = re.compile(rf"[{JS_WS}]*?(?:\r?\n|\Z)")
_LEAD_ALL = re.compile(rf"^[{JS_WS}]+")
_LEAD_LINE = re.compile(r"^[ \t]*\r?\n?")
_TRAIL_ALL = re.compile(rf"[{JS_WS}]+\Z")
_TRAIL_LINE = re.compile(r"[ \t]+\Z")


@dataclass(slots=True)
class _StripInfo:
    open: bool = False
    close: bool = False
    open_standalone: bool = False
    close_standalone: bool = False
    inline_standalone: bool = False


def _is_prev_ws(body: list[Statement], i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = len(body)
    prev = body[i - 1] if i - 1 >= 0 else None
    sibling = body[i - 2] if i - 2 >= 0 else None
    if prev is None:
        return is_root
    if isinstance(prev, Content):
        rx = _PREV_WS if (sibling is not None or not is_root) else _PREV_WS_ROOT
        return rx.search(prev.original) is not None
    return False


def _is_next_ws(body: list[Statement], i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = -1
    nxt = body[i + 1] if i + 1 < len(body) else None
    sibling = body[i + 2] if i + 2 < len(body) else None
    if nxt is None:
        return is_root
    if isinstance(nxt, Content):
        rx = _NEXT_WS if (sibling is not None or not is_root) else _NEXT_WS_ROOT
        return rx.match(nxt.original) is not None
    return False


def _omit_right(body: list[Statement], i: int | None = None, multiple: bool = False) -> None:
    idx = 0 if i is None else i + 1
    current = body[idx] if 0 <= idx < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.right_stripped):
        return
    original = current.value
    current.value = (_LEAD_ALL if multiple else _LEAD_LINE).sub("", original, count=1)
    current.right_stripped = current.value != original


def _omit_left(body: list[Statement], i: int | None = None, multiple: bool = False) -> bool:
    idx = len(body) - 1 if i is None else i - 1
    current = body[idx] if 0 <= idx < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.left_stripped):
        return False
    original = current.value
    current.value = (_TRAIL_ALL if multiple else _TRAIL_LINE).sub("", original, count=1)
    current.left_stripped = current.value != original
    return current.left_stripped


class _Whitespace:
    def __init__(self) -> None:
        self.root_seen = False

    def program(self, program: Program | None) -> None:
        if program is None:
            return
        is_root = not self.root_seen
        self.root_seen = True
        body = program.body
        for i, current in enumerate(body):
            strip = self.accept(current)
            if strip is None:
                continue
            prev_ws = _is_prev_ws(body, i, is_root)
            next_ws = _is_next_ws(body, i, is_root)
            open_standalone = strip.open_standalone and prev_ws
            close_standalone = strip.close_standalone and next_ws
            inline_standalone = strip.inline_standalone and prev_ws and next_ws
            if strip.close:
                _omit_right(body, i, True)
            if strip.open:
                _omit_left(body, i, True)
            if inline_standalone:
                _omit_right(body, i)
                if _omit_left(body, i) and isinstance(current, Partial):
                    prev = body[i - 1]
                    assert isinstance(prev, Content)
                    m = re.search(r"[ \t]+\Z", prev.original)
                    current.indent = m.group() if m else ""
            if open_standalone and isinstance(current, Block):
                target = current.program or current.inverse
                assert target is not None
                _omit_right(target.body)
                _omit_left(body, i)
            if close_standalone and isinstance(current, Block):
                _omit_right(body, i)
                target = current.inverse or current.program
                assert target is not None
                _omit_left(target.body)

    def accept(self, node: Statement) -> _StripInfo | None:
        if isinstance(node, Mustache):
            return _StripInfo(node.strip.open, node.strip.close)
        if isinstance(node, (Partial, Comment)):
            return _StripInfo(node.strip.open, node.strip.close, inline_standalone=True)
        if isinstance(node, Block):
            return self.block(node)
        return None

    def block(self, block: Block) -> _StripInfo:
        self.program(block.program)
        self.program(block.inverse)
        program = block.program or block.inverse
        assert program is not None
        inverse = block.inverse if block.program is not None else None
        first_inverse = last_inverse = inverse
        if inverse is not None and inverse.chained:
            head = inverse.body[0]
            assert isinstance(head, Block) and head.program is not None
            first_inverse = head.program
            while last_inverse is not None and last_inverse.chained:
                tail = last_inverse.body[-1]
                assert isinstance(tail, Block)
                last_inverse = tail.program
        close_strip = block.close_strip or Strip()
        strip = _StripInfo(
            block.open_strip.open,
            close_strip.close,
            open_standalone=_is_next_ws(program.body),
            close_standalone=_is_prev_ws((first_inverse or program).body),
        )
        if block.open_strip.close:
            _omit_right(program.body, None, True)
        if inverse is not None:
            inverse_strip = block.inverse_strip or Strip()
            assert first_inverse is not None and last_inverse is not None
            if inverse_strip.open:
                _omit_left(program.body, None, True)
            if inverse_strip.close:
                _omit_right(first_inverse.body, None, True)
            if close_strip.open:
                _omit_left(last_inverse.body, None, True)
            if _is_prev_ws(program.body) and _is_next_ws(first_inverse.body):
                _omit_left(program.body)
                _omit_right(first_inverse.body)
        elif close_strip.open:
            _omit_left(program.body, None, True)
        return strip


def parse(src: str) -> Program:
    """Parse a template into its AST with whitespace control applied; raises TemplateSyntaxError."""
    program = _Parser(src).parse_root()
    _Whitespace().program(program)
    return program
