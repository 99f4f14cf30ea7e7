"""Tokenizer mirroring Handlebars.js 4.7's jison lexer (handlebars.l), rule for rule and in the same order.

Byte-for-byte compatibility depends on lexing exactly like the original: first matching rule wins, `\\s` is
JavaScript's whitespace set, and the same lookaheads decide between numbers, booleans and identifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["JS_WS", "LexError", "Token", "tokenize"]

JS_WS = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_S = f"[{JS_WS}]"
_LOOKAHEAD = f"(?=[=~}}{JS_WS}/.)|])"
_LITERAL_LOOKAHEAD = f"(?=[~}}{JS_WS})])"
_ID_CHAR = f'[^{JS_WS}!"#%-,./;->@\\[-^`{{-~]'


class LexError(Exception):
    """Text the lexer cannot tokenize; `pos` is the offset into the source."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


@dataclass(slots=True)
class Token:
    """One lexer token: kind (the jison token name), text (after the lexer's own rewriting) and source offset."""

    kind: str
    text: str
    pos: int


# (regex, token kind, leaves the mustache state). Order matters: it is the order of handlebars.l.
_MU_RULES: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(r"\("), "OPEN_SEXPR", False),
    (re.compile(r"\)"), "CLOSE_SEXPR", False),
    (re.compile(r"\{\{\{\{"), "OPEN_RAW_BLOCK", False),
    (re.compile(r"\}\}\}\}"), "CLOSE_RAW_BLOCK", False),
    (re.compile(r"\{\{~?>"), "OPEN_PARTIAL", False),
    (re.compile(r"\{\{~?#>"), "OPEN_PARTIAL_BLOCK", False),
    (re.compile(r"\{\{~?#\*?"), "OPEN_BLOCK", False),
    (re.compile(r"\{\{~?/"), "OPEN_ENDBLOCK", False),
    (re.compile(rf"\{{\{{~?\^{_S}*~?\}}\}}"), "INVERSE", True),
    (re.compile(rf"\{{\{{~?{_S}*else{_S}*~?\}}\}}"), "INVERSE", True),
    (re.compile(r"\{\{~?\^"), "OPEN_INVERSE", False),
    (re.compile(rf"\{{\{{~?{_S}*else"), "OPEN_INVERSE_CHAIN", False),
    (re.compile(r"\{\{~?\{"), "OPEN_UNESCAPED", False),
    (re.compile(r"\{\{~?&"), "OPEN", False),
    (re.compile(r"\{\{~?!(?=--)[\s\S]*?--~?\}\}"), "COMMENT", True),
    (re.compile(r"\{\{~?!--"), "UNCLOSED_COMMENT", False),
    (re.compile(r"\{\{~?![\s\S]*?\}\}"), "COMMENT", True),
    (re.compile(r"\{\{~?\*?"), "OPEN", False),
    (re.compile(r"="), "EQUALS", False),
    (re.compile(r"\.\."), "ID", False),
    (re.compile(rf"\.{_LOOKAHEAD}"), "ID", False),
    (re.compile(r"[/.]"), "SEP", False),
    (re.compile(rf"{_S}+"), "", False),
    (re.compile(r"\}~?\}\}"), "CLOSE_UNESCAPED", True),
    (re.compile(r"~?\}\}"), "CLOSE", True),
    (re.compile(r'"(?:\\"|[^"])*"'), "STRING", False),
    (re.compile(r"'(?:\\'|[^'])*'"), "STRING", False),
    (re.compile(r"@"), "DATA", False),
    (re.compile(rf"(?:true|false){_LITERAL_LOOKAHEAD}"), "BOOLEAN", False),
    (re.compile(rf"undefined{_LITERAL_LOOKAHEAD}"), "UNDEFINED", False),
    (re.compile(rf"null{_LITERAL_LOOKAHEAD}"), "NULL", False),
    (re.compile(rf"-?[0-9]+(?:\.[0-9]+)?{_LITERAL_LOOKAHEAD}"), "NUMBER", False),
    (re.compile(rf"as{_S}+\|"), "OPEN_BLOCK_PARAMS", False),
    (re.compile(r"\|"), "CLOSE_BLOCK_PARAMS", False),
    (re.compile(rf"{_ID_CHAR}+{_LOOKAHEAD}"), "ID", False),
    (re.compile(r"\[(?:\\\]|[^\]])*\]"), "ID", False),
]
_BRACKET_ESCAPE = re.compile(r"\\([\\\]])")


def _emu_end(src: str, start: int) -> int:
    """End of an escaped mustache (`\\{{...`): at least 2 chars, up to the next `{{`, `\\{{`, `\\\\{{` or EOF."""
    n = len(src)
    p = start + 2
    while p < n:
        if src.startswith("{{", p) or src.startswith("\\{{", p) or src.startswith("\\\\{{", p):
            return p
        p += 1
    return n


def tokenize(src: str) -> list[Token]:
    """Split a template into tokens; the list always ends with an EOF token."""
    tokens: list[Token] = []
    append = tokens.append
    pos = 0
    n = len(src)
    while pos < n:
        # INITIAL state: content up to the next "{{" (honouring \{{ and \\{{ escapes).
        idx = src.find("{{", pos)
        if idx < 0:
            append(Token("CONTENT", src[pos:], pos))
            break
        text = src[pos:idx]
        escaped = False
        if text.endswith("\\\\"):
            text = text[:-1]
        elif text.endswith("\\"):
            text = text[:-1]
            escaped = True
        if text:
            append(Token("CONTENT", text, pos))
        pos = idx
        if escaped:
            end = _emu_end(src, pos)
            append(Token("CONTENT", src[pos:end], pos))
            pos = end
            continue
        # Mustache state until a closing token.
        while True:
            if pos >= n:
                append(Token("EOF", "", pos))
                return tokens
            leave_mustache = False
            for rx, kind, leaves in _MU_RULES:
                m = rx.match(src, pos)
                if m is None:
                    continue
                text = m.group()
                if kind == "UNCLOSED_COMMENT":
                    raise LexError("unclosed {{!-- comment", pos)
                if kind:
                    if kind == "STRING":
                        quote = text[0]
                        text = text[1:-1].replace("\\" + quote, quote)
                    elif kind == "ID" and text.startswith("["):
                        text = _BRACKET_ESCAPE.sub(r"\1", text)
                    append(Token(kind, text, pos))
                pos = m.end()
                leave_mustache = leaves
                break
            else:
                append(Token("INVALID", src[pos], pos))
                pos += 1
            if leave_mustache:
                break
    append(Token("EOF", "", n))
    return tokens
