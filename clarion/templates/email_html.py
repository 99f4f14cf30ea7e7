"""Email HTML as it is sent: MJML compiled to HTML (mrml) and `<style>` rules inlined into `style` attributes
(css-inline), done once when a template version is written and stored beside the source.

Handlebars must come through untouched, but both tools parse HTML, and an HTML parser moves text it finds where
text cannot be (a `{{#each}}` between `<tr>` rows is "foster-parented" out of the table). So the expressions of
the result are compared with the source's: when inlining moved any, the HTML is kept as it was before inlining
(what Pinpoint would have sent); when MJML compilation moved any, the template is refused, because there is no
uncompiled HTML to fall back to.

Both libraries are native code that recurses over the document, and deep nesting crashes them (SIGSEGV). So a
template write checks the nesting before anything native sees it, and runs the libraries in a child process
(html_worker.py), where a crash fails that write with BadRequest instead of stopping the server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import css_inline
import mrml

from clarion.errors import BadRequest
from clarion.templates.html_worker import HtmlWorker, WorkerFailed

COMPILED_HTML = "_CompiledHtml"  # the stored body member holding the HTML to send; never returned by the API
_EXPRESSION = re.compile(r"\{\{\{?.*?\}\}\}?", re.DOTALL)
# Remote stylesheets are never fetched (a template write must not reach the network); <link> tags and at-rules
# (@media for responsive layouts, @import of web fonts) are left for the mail client.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=True, keep_at_rules=True)


MAX_NESTING = 200  # elements open at once; both libraries handle a few thousand, and emails need a few dozen
# Elements that do not count: void ones, and those whose end tag is optional (HTML closes an open <p> or <li> at
# the next one, so they do not pile up). A <table> counts once for its implied <tbody><tr><td>.
_FLAT = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr", "keygen", "p", "li", "dt", "dd", "td", "th", "tr", "thead", "tbody", "tfoot",
                   "colgroup", "caption", "option", "optgroup", "rb", "rt", "rtc", "rp", "html", "head",
                   "body"})  # fmt: skip
_TAG = re.compile(r"<(/?)([a-z][\w:.-]*)[^<>]*?(/?)>")
_WORKER = HtmlWorker()


def is_mjml(html: str) -> bool:
    return html.lstrip().startswith("<mjml")


def needs_compiling(html: str) -> bool:
    return is_mjml(html) or "<style" in html.lower()


def nesting(html: str) -> int:
    """How many elements are open at the deepest point, as an HTML parser would count them (linear time)."""
    text = html.lower()
    depth = deepest = pos = 0
    while (start := text.find("<", pos)) >= 0:
        if text.startswith("<!--", start):
            end = text.find("-->", start + 4)
            if end < 0:
                break
            pos = end + 3
            continue
        tag = _TAG.match(text, start)
        if tag is None:
            pos = start + 1
            continue
        closing, name, self_closing = tag.groups()
        pos = tag.end()
        if name in ("style", "script") and not closing and not self_closing:
            pos = text.find(f"</{name}", pos)  # raw text up to its end tag
            if pos < 0:
                break
        elif name in _FLAT:
            continue
        elif closing:
            depth = max(0, depth - 1)
        elif not self_closing:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def configure_worker(timeout_seconds: float) -> None:
    """How long one HtmlPart may take in the child process (the operator's `[templates]` settings)."""
    _WORKER.timeout_seconds = timeout_seconds


async def compile_html_isolated(source: str, max_length: int) -> str | None:
    """compile_html() run in the child process, on input bounded first; BadRequest for anything it cannot send.

    `max_length` is the longest text a render may produce: compiled HTML longer than that could never be sent.
    Runs beside the event loop (a thread waits for the child).
    """
    if not needs_compiling(source):
        return None
    html = await asyncio.to_thread(_compile_bounded, source)
    if html is not None and len(html) > max_length:
        raise BadRequest(
            f"HtmlPart compiles to {len(html):,} characters of HTML; a message can be at most {max_length:,} "
            "(templates.max_output)"
        )
    return html


def _compile_bounded(source: str) -> str | None:
    depth = nesting(source)
    if depth > MAX_NESTING:
        raise BadRequest(
            f"HtmlPart nests elements {depth} deep; MJML and CSS inlining accept at most {MAX_NESTING} open elements"
        )
    try:
        answer = _WORKER.compile(source)
    except WorkerFailed as failure:
        raise BadRequest(
            f"HtmlPart could not be compiled: the MJML/CSS compiler {failure} on it; simplify the document"
        ) from None
    if "error" in answer:
        raise BadRequest(answer["error"])
    html: str | None = answer["html"]
    return html


def _expressions(text: str) -> list[str]:
    return _EXPRESSION.findall(text)


def compile_html(source: str) -> str | None:
    """The HTML to send for an HtmlPart, or None when it is the source itself (no MJML, no `<style>`).

    Runs the native libraries in this process: the server calls it through compile_html_isolated().
    """
    if not needs_compiling(source):
        return None
    mjml = is_mjml(source)
    expected = _expressions(source)
    html = source
    if mjml:
        try:
            html = mrml.to_html(source).content
        except OSError as error:  # mrml reports parse errors as OSError
            raise BadRequest(f"HtmlPart is MJML that does not compile: {error}") from error
        if _expressions(html) != expected:
            raise BadRequest(
                "MJML compilation moved or dropped Handlebars expressions in HtmlPart: keep block helpers "
                "({{#if}}, {{#each}}) where HTML allows text, e.g. inside <mj-text> or a table cell, not between "
                "table rows or cells, and do not use mj-style inline with them"
            )
    try:
        inlined = _INLINER.inline(html)
    except css_inline.InlineError:
        inlined = html  # CSS it cannot read stays in <style>, as the mail client would see it anyway
    if _expressions(inlined) != expected:
        inlined = html
    return inlined if inlined != source else None


def sending_html(body: Mapping[str, Any]) -> str | None:
    """The HTML a send uses from a stored EMAIL template version: compiled when there is a compiled form."""
    return body.get(COMPILED_HTML) or body.get("HtmlPart")
