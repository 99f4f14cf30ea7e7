"""A template rendered as one recipient would get it, without sending: the web console's live preview.

It goes through the send path's own MessageBuilder, so the preview is what a send produces — Pinpoint's layering of
substitutions and DefaultSubstitutions, the endpoint's and user's variables, MJML and CSS inlining for email, the
same render budget — for a stored template version or an unsaved draft, and for a chosen endpoint or none.

A draft is previewed while it is being written, so what keeps it from rendering (a syntax error, a missing subject)
is answered as the preview's `Problem`, naming the part, rather than as an error; a template, endpoint or project
that does not exist is still NotFound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from clarion.context import CallContext
from clarion.endpoints.service import endpoint_key, user_attributes_by_id
from clarion.errors import BadRequest, NotFound
from clarion.messages.delivery import Target, endpoint_target, load_templates
from clarion.messages.rendering import TEMPLATE_MEMBER, MessageBuilder, Recipient, Undeliverable, check_texts
from clarion.projects.service import require_app
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database, Transaction

# The channel a template family is previewed as (push: the default push message, as FCM shows it).
_CHANNEL = {"EMAIL": "EMAIL", "SMS": "SMS", "VOICE": "VOICE", "PUSH": "GCM"}
PREVIEW_FROM = "preview@clarion.invalid"  # an email preview needs a sender; the channel's is not looked up


async def preview_template(db: Database, ctx: CallContext, app_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
    kind = request["TemplateType"]
    if kind not in _CHANNEL:
        raise BadRequest(f"TemplateType must be one of {', '.join(_CHANNEL)}, not {kind!r}")
    name, draft = request.get("TemplateName"), request.get("Template")
    if (name is None) == (draft is None):
        raise BadRequest("Give either TemplateName (a stored template) or Template (a draft), not both")
    if draft is not None:
        try:
            await asyncio.to_thread(check_texts, draft, "Template")  # a syntax error names its part
        except BadRequest as problem:
            return {"Problem": problem.message}
    endpoint_id = request.get("EndpointId")

    def plan(tx: Transaction) -> tuple[dict[str, dict[str, Any]], Target | None]:
        require_app(tx, app_id)
        if name is not None:
            reference = {"Name": name, **({"Version": request["Version"]} if request.get("Version") else {})}
            templates = load_templates(tx, {TEMPLATE_MEMBER[kind]: reference})
        else:
            templates = {kind: dict(draft)}
        if endpoint_id is None:
            return templates, None
        row = endpoint_store.fetch(tx, app_id, [endpoint_key(endpoint_id)]).get(endpoint_key(endpoint_id))
        if row is None:
            raise NotFound(f"Endpoint {endpoint_id!r} not found in project {app_id}")
        users = user_attributes_by_id(tx, app_id, [row])
        return templates, endpoint_target(app_id, endpoint_id, row, {}, users, ctx.request_id)

    templates, target = await db.read(plan)
    variables = target.variables if target else {"RequestId": ctx.request_id}
    substitutions = request.get("Substitutions")
    builder = MessageBuilder({"DefaultMessage": {"Substitutions": substitutions}} if substitutions else {}, templates)
    try:
        content = await builder.content(Recipient(_CHANNEL[kind], variables, {}), PREVIEW_FROM, None)
    except Undeliverable as refused:
        return {"Problem": f"The template cannot be rendered: {refused}"}
    parts = {
        "Subject": getattr(content, "subject", None),
        "HtmlPart": getattr(content, "html", None),
        "TextPart": getattr(content, "text", None),
        "Title": getattr(content, "title", None),
        "Body": getattr(content, "body", None),
    }
    return {member: value for member, value in parts.items() if value is not None}
