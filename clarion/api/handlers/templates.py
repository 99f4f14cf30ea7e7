"""The five template types share one set of handlers; the type comes from the operation, or from the path."""

from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.templates import service

# Operation-name infix → template type.
TYPES = {"Email": "EMAIL", "Sms": "SMS", "Push": "PUSH", "Voice": "VOICE", "InApp": "INAPP"}


def _create(template_type: str) -> Handler:
    async def create(call: Call) -> Any:
        return await service.create_template(
            call.services.db, call.ctx, template_type, call.params["TemplateName"], call.body
        )

    return create


def _get(template_type: str) -> Handler:
    async def get(call: Call) -> Any:
        p = call.params
        return await service.get_template(
            call.services.db, call.ctx, template_type, p["TemplateName"], p.get("Version")
        )

    return get


def _update(template_type: str) -> Handler:
    async def update(call: Call) -> Any:
        p = call.params
        return await service.update_template(
            call.services.db,
            call.ctx,
            template_type,
            p["TemplateName"],
            call.body,
            bool(p.get("CreateNewVersion", False)),
            p.get("Version"),
        )

    return update


def _delete(template_type: str) -> Handler:
    async def delete(call: Call) -> Any:
        p = call.params
        return await service.delete_template(
            call.services.db, call.ctx, template_type, p["TemplateName"], p.get("Version")
        )

    return delete


async def list_templates(call: Call) -> Any:
    p = call.params
    return await service.list_templates(
        call.services.db, call.ctx, p.get("Prefix"), p.get("TemplateType"), p.get("PageSize"), p.get("NextToken")
    )


async def list_template_versions(call: Call) -> Any:
    p = call.params
    return await service.list_template_versions(
        call.services.db, call.ctx, p["TemplateName"], p["TemplateType"], p.get("PageSize"), p.get("NextToken")
    )


async def update_template_active_version(call: Call) -> Any:
    p = call.params
    return await service.update_active_version(
        call.services.db, call.ctx, p["TemplateName"], p["TemplateType"], call.body
    )


HANDLERS: dict[str, Handler] = {
    "ListTemplates": list_templates,
    "ListTemplateVersions": list_template_versions,
    "UpdateTemplateActiveVersion": update_template_active_version,
}
for _infix, _type in TYPES.items():
    HANDLERS[f"Create{_infix}Template"] = _create(_type)
    HANDLERS[f"Get{_infix}Template"] = _get(_type)
    HANDLERS[f"Update{_infix}Template"] = _update(_type)
    HANDLERS[f"Delete{_infix}Template"] = _delete(_type)
