"""The audit log: every change made through the console, with who made it, when, and what it touched.

The request pipeline records one entry per state-changing call a console session makes (sign-ins and sign-outs
included), refused calls too, with the status they got; admins read it newest first.
"""

from __future__ import annotations

from typing import Any

from clarion.clock import Clock, iso_millis
from clarion.paging import decode_token, page_response
from clarion.store import console as console_store
from clarion.store.console import AuditRow
from clarion.store.database import Database


async def record(
    db: Database,
    clock: Clock,
    *,
    username: str,
    action: str,
    app_id: str | None,
    target: str,
    status: int,
    request_id: str,
) -> None:
    at = iso_millis(clock.now())
    await db.write(
        lambda tx: console_store.insert_audit(tx, at, username, action, app_id, target[:500], status, request_id)
    )


def _item(row: AuditRow) -> dict[str, Any]:
    item: dict[str, Any] = {
        "Date": row.at,
        "Username": row.username,
        "Action": row.action,
        "Target": row.target,
        "Status": row.status,
        "RequestId": row.request_id,
    }
    if row.app_id is not None:
        item["ApplicationId"] = row.app_id
    return item


async def page(db: Database, size: int, token: str | None) -> dict[str, Any]:
    before = decode_token(token)
    rows = await db.read(lambda tx: console_store.audit_page(tx, before, size))
    return page_response(rows, size, _item, lambda row: row.seq)
