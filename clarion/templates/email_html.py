"""Email HTML as it is sent: MJML compiled to HTML (mrml) and `<style>` rules inlined into `style` attributes
(css-inline), done once when a template version is written and stored beside the source.

Handlebars must come through untouched, but both tools parse HTML, and an HTML parser moves text it finds where
text cannot be (a `{{#each}}` between `<tr>` rows is "foster-parented" out of the table). So the expressions of
the result are compared with the source's: when inlining moved any, the HTML is kept as it was before inlining
(what Pinpoint would have sent); when MJML compilation moved any, the template is refused, because there is no
uncompiled HTML to fall back to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import css_inline
import mrml

from clarion.errors import BadRequest

COMPILED_HTML = "_CompiledHtml"  # the stored body member holding the HTML to send; never returned by the API
_EXPRESSION = re.compile(r"\{\{\{?.*?\}\}\}?", re.DOTALL)
# Remote stylesheets are never fetched (a template write must not reach the network); <link> tags and at-rules
# (@media for responsive layouts, @import of web fonts) are left for the mail client.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=True, keep_at_rules=True)


def is_mjml(html: str) -> bool:
    return html.lstrip().startswith("<mjml")


def _expressions(text: str) -> list[str]:
    return _EXPRESSION.findall(text)


def compile_html(source: str) -> str | None:
    """The HTML to send for an HtmlPart, or None when it is the source itself (no MJML, no `<style>`)."""
    mjml = is_mjml(source)
    if not mjml and "<style" not in source.lower():
        return None
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
