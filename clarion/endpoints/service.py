"""Endpoint and user operations: the upsert with Pinpoint's side effects, reads and deletes.

Writes are planned in memory for a whole batch (one read of the endpoints and users involved, one write of
each table), because a 100-item batch is the unit clients send and the unit the throughput goal counts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import AppSettingsChanged, EndpointsDeleted, EndpointsWritten
from clarion.endpoints import rules
from clarion.errors import BadRequest, NotFound
from clarion.projects.service import app_not_found, require_app
from clarion.store import changes
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.names import NameRegistry


def endpoint_key(endpoint_id: str) -> str:
    """Pinpoint endpoint ids are case-insensitive."""
    return endpoint_id.lower()


def cohort_of(endpoint_id: str) -> int:
    """A stable 0–99 bucket, so holdouts and treatments keep the same endpoints across runs."""
    return zlib.crc32(endpoint_key(endpoint_id).encode()) % 100


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def endpoint_response(app_id: str, row: EndpointRow, user_attributes: dict[str, list[str]] | None) -> dict[str, Any]:
    doc = msgspec.json.decode(row.doc)
    response: dict[str, Any] = {
        "ApplicationId": app_id,
        "Id": row.id,
        "CohortId": str(row.cohort_id),
        "CreationDate": row.created_at,
        "EffectiveDate": row.effective_at,
        "EndpointStatus": row.endpoint_status,
        "OptOut": row.opt_out,
        **{k: v for k, v in doc.items() if k != "OptOut"},
    }
    user = doc.get("User")
    if user and user.get("UserId"):
        response["User"] = {"UserId": user["UserId"], "UserAttributes": user_attributes or {}}
    return response


def endpoint_timezone(row: EndpointRow) -> str | None:
    """Demographic.Timezone as the endpoint holds it (an IANA name, or anything the client wrote)."""
    return msgspec.json.decode(row.doc).get("Demographic", {}).get("Timezone")


class ItemRejected(BadRequest):
    """One batch item cannot be applied; PutEvents reports it per item, UpdateEndpoints* fail the request."""


@dataclass
class _BatchPlan:
    """The endpoints and users a batch touches, as they will be once it is applied."""

    app_id: str
    rows: dict[str, EndpointRow]
    users: dict[str, dict[str, list[str]]]
    user_counts: dict[str, int]
    names: dict[str, set[str]]
    now: str
    changed_rows: dict[str, EndpointRow] = field(default_factory=dict)
    changed_users: set[str] = field(default_factory=set)
    address_owner: dict[str, str] = field(default_factory=dict)
    new_names: dict[str, set[str]] = field(default_factory=dict)


class EndpointWriter:
    """Applies UpdateEndpoint / UpdateEndpointsBatch / PutEvents endpoint items inside one transaction."""

    def __init__(self, names: NameRegistry) -> None:
        self.names = names

    def apply(
        self,
        tx: Transaction,
        ctx: CallContext,
        app_id: str,
        items: list[tuple[str, dict[str, Any]]],
        *,
        all_or_nothing: bool,
    ) -> list[str | None]:
        """Apply (endpoint id, request) items in order; return None or the reason, per item."""
        if not items:
            require_app(tx, app_id)
            return []
        filters = endpoint_store.app_attribute_filters(tx, app_id)
        if filters is None:
            raise app_not_found(app_id)
        blocked = {kind: msgspec.json.decode(p) for kind, p in filters.items()}
        items = [(endpoint_id, rules.filter_blocked(request, blocked)) for endpoint_id, request in items]
        with self.names.undone_on_error(app_id):
            plan = self._read_plan(tx, ctx, app_id, items)
            outcomes: list[str | None] = []
            for endpoint_id, request in items:
                try:
                    self._plan_item(tx, ctx, plan, endpoint_id, request)
                    outcomes.append(None)
                except ItemRejected as rejected:
                    if all_or_nothing:
                        raise BadRequest(rejected.message) from None
                    outcomes.append(rejected.message)
            self._write(tx, plan)
            return outcomes

    def _read_plan(
        self, tx: Transaction, ctx: CallContext, app_id: str, items: list[tuple[str, dict[str, Any]]]
    ) -> _BatchPlan:
        """Read everything the batch touches: its endpoints, then its users' attributes and endpoint counts."""
        keys = sorted({endpoint_key(endpoint_id) for endpoint_id, _ in items})
        rows = endpoint_store.fetch(tx, app_id, keys)
        user_ids = sorted(
            {row.user_id for row in rows.values() if row.user_id}
            | {(r.get("User") or {}).get("UserId") for _, r in items if (r.get("User") or {}).get("UserId")}
        )
        attributes, counts = endpoint_store.users_and_counts(tx, app_id, user_ids)
        return _BatchPlan(
            app_id=app_id,
            rows=rows,
            users={uid: msgspec.json.decode(a) for uid, a in attributes.items()},
            user_counts=counts,
            names={kind: set(self.names.known(tx, app_id, kind)) for kind in rules.ATTRIBUTE_KINDS},
            now=iso_millis(ctx.now),
        )

    def _plan_item(
        self, tx: Transaction, ctx: CallContext, plan: _BatchPlan, endpoint_id: str, request: dict[str, Any]
    ) -> None:
        key = endpoint_key(endpoint_id)
        current = plan.rows.get(key)
        stored_doc = msgspec.json.decode(current.doc) if current else {}
        doc = rules.merge_endpoint(stored_doc, request)
        if current and ("ChannelType" in request or "Address" in request):
            try:  # a partial update must not pair a stored channel with an address it does not accept
                rules.check_address(doc.get("ChannelType"), doc.get("Address"), f"Endpoint {endpoint_id!r}")
            except BadRequest as error:
                raise ItemRejected(error.message) from None
        old_user = current.user_id if current else None
        new_user = (doc.get("User") or {}).get("UserId")

        given_user_attributes = (request.get("User") or {}).get("UserAttributes")
        user_attributes = plan.users.get(new_user, {}) if new_user else {}
        if new_user and given_user_attributes is not None:
            user_attributes = rules.merge_user_attributes(user_attributes, given_user_attributes)

        new_names = self._new_names(plan, doc, user_attributes if new_user else {})
        doc["RequestId"] = ctx.request_id
        encoded = msgspec.json.encode(doc)
        size = len(encoded) + len(msgspec.json.encode(user_attributes))  # bytes, not characters
        if size > rules.MAX_ENDPOINT_BYTES:
            raise ItemRejected(
                f"Endpoint {endpoint_id!r} would be {size} bytes; an endpoint is at most {rules.MAX_ENDPOINT_BYTES}"
            )
        evicted = None
        if new_user and new_user != old_user:
            evicted = self._make_room_for(tx, plan, new_user, doc.get("ChannelType"), endpoint_id)

        # Every check passed: commit the item to the plan.
        if evicted is not None:
            plan.changed_rows[evicted.endpoint_key] = evicted
            plan.rows[evicted.endpoint_key] = evicted
        if new_user != old_user:
            if old_user:
                plan.user_counts[old_user] = plan.user_counts.get(old_user, 1) - 1
            if new_user:
                plan.user_counts[new_user] = plan.user_counts.get(new_user, 0) + 1
        if new_user and given_user_attributes is not None:
            plan.users[new_user] = user_attributes
            plan.changed_users.add(new_user)
        for kind, names in new_names.items():
            plan.names[kind] |= names
            plan.new_names.setdefault(kind, set()).update(names)
        now = plan.now
        row = EndpointRow(
            app_id=plan.app_id,
            endpoint_key=key,
            id=current.id if current else endpoint_id,
            channel_type=doc.get("ChannelType"),
            address=doc.get("Address"),
            # Pinpoint marks an endpoint ACTIVE whenever it is written, unless the write says otherwise.
            endpoint_status=request.get("EndpointStatus", "ACTIVE"),
            opt_out=doc.get("OptOut", "NONE"),
            user_id=new_user,
            cohort_id=current.cohort_id if current else cohort_of(endpoint_id),
            created_at=current.created_at if current else now,
            effective_at=now,
            doc=encoded.decode(),
        )
        plan.rows[key] = plan.changed_rows[key] = row
        # The endpoint written last with an address holds it; other ACTIVE holders become INACTIVE.
        if row.address and row.endpoint_status == "ACTIVE":
            plan.address_owner[row.address] = key

    def _new_names(
        self, plan: _BatchPlan, doc: dict[str, Any], user_attributes: dict[str, list[str]]
    ) -> dict[str, set[str]]:
        used = {
            rules.CUSTOM_ATTRIBUTES: doc.get("Attributes", {}),
            rules.METRIC_ATTRIBUTES: doc.get("Metrics", {}),
            rules.USER_ATTRIBUTES: user_attributes,
        }
        if all(plan.names[kind].issuperset(names) for kind, names in used.items()):
            return {}  # the common case: names the project already has
        fresh = {kind: set(names) - plan.names[kind] for kind, names in used.items()}
        fresh = {kind: names for kind, names in fresh.items() if names}
        if fresh:
            total = sum(len(names) for names in plan.names.values()) + sum(len(n) for n in fresh.values())
            if total > rules.MAX_ATTRIBUTE_NAMES_PER_APP:
                listed = ", ".join(sorted(n for names in fresh.values() for n in names))
                raise ItemRejected(
                    f"Adding attribute(s) {listed} would exceed the project's {rules.MAX_ATTRIBUTE_NAMES_PER_APP} "
                    "attribute names (Attributes, Metrics and UserAttributes together)"
                )
        return fresh

    def _make_room_for(
        self, tx: Transaction, plan: _BatchPlan, user_id: str, channel: str | None, endpoint_id: str
    ) -> EndpointRow | None:
        """Enforce 15 endpoints per user; a new push endpoint displaces the user's oldest push endpoint."""
        if plan.user_counts.get(user_id, 0) < rules.MAX_ENDPOINTS_PER_USER:
            return None
        refusal = ItemRejected(
            f"User {user_id!r} already has {rules.MAX_ENDPOINTS_PER_USER} endpoints; endpoint {endpoint_id!r} "
            "cannot be added"
        )
        if channel not in rules.PUSH_CHANNELS:
            raise refusal
        owned = {row.endpoint_key: row for row in endpoint_store.of_user(tx, plan.app_id, user_id)}
        owned.update(plan.rows)  # this batch's rows win over stored ones, e.g. an endpoint moved off the user
        push = [r for r in owned.values() if r.user_id == user_id and r.channel_type in rules.PUSH_CHANNELS]
        if not push:
            raise refusal
        oldest = min(push, key=lambda r: (r.effective_at, r.endpoint_key))
        doc = msgspec.json.decode(oldest.doc)
        doc.pop("User", None)
        plan.user_counts[user_id] -= 1
        return replace(oldest, endpoint_status="INACTIVE", user_id=None, doc=_dumps(doc))

    def _write(self, tx: Transaction, plan: _BatchPlan) -> None:
        rows = plan.changed_rows
        for key, row in rows.items():  # earlier items of this batch that held a claimed address lose it too
            owner = plan.address_owner.get(row.address) if row.address else None
            if owner is not None and owner != key and row.endpoint_status != "INACTIVE":
                rows[key] = replace(row, endpoint_status="INACTIVE")
        # One change stamp for the batch's three writes: each stamp is an UPDATE of the feed's counter row, a
        # statement that costs 1-4 ms on PostgreSQL here (docs/benchmarks.md).
        seq = changes.next_seq(tx) if rows or plan.address_owner or plan.changed_users else None
        endpoint_store.upsert(tx, rows.values(), seq)
        endpoint_store.deactivate_address(tx, plan.app_id, plan.address_owner, seq)
        endpoint_store.put_user_attributes(tx, plan.app_id, {u: _dumps(plan.users[u]) for u in plan.changed_users}, seq)
        for kind, names in plan.new_names.items():
            self.names.add(tx, plan.app_id, kind, names)
        if rows or plan.changed_users:
            ids = tuple(row.id for row in rows.values())
            tx.record(EndpointsWritten(plan.app_id, ids, tuple(sorted(plan.changed_users))))


async def update_endpoint(
    db: Database, writer: EndpointWriter, ctx: CallContext, app_id: str, endpoint_id: str, request: dict[str, Any]
) -> None:
    rules.check_endpoint_id(endpoint_id, "EndpointId")
    rules.check_endpoint_request(request, "EndpointRequest")
    await db.write(lambda tx: writer.apply(tx, ctx, app_id, [(endpoint_id, request)], all_or_nothing=True))


async def update_endpoints_batch(
    db: Database, writer: EndpointWriter, ctx: CallContext, app_id: str, items: list[dict[str, Any]]
) -> None:
    if not items:
        raise BadRequest("Item must hold at least one endpoint")
    if len(items) > rules.MAX_BATCH_ITEMS:
        raise BadRequest(f"Item holds {len(items)} endpoints; a batch holds at most {rules.MAX_BATCH_ITEMS}")
    pairs = []
    for index, item in enumerate(items):
        where = f"Item[{index}]"
        endpoint_id = item.get("Id")
        if endpoint_id is None:
            raise BadRequest(f"{where}.Id is required")
        rules.check_endpoint_id(endpoint_id, where)
        rules.check_endpoint_request(item, where)
        pairs.append((endpoint_id, {k: v for k, v in item.items() if k != "Id"}))
    await db.write(lambda tx: writer.apply(tx, ctx, app_id, pairs, all_or_nothing=True))


async def get_endpoint(db: Database, app_id: str, endpoint_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        row = endpoint_store.fetch(tx, app_id, [endpoint_key(endpoint_id)]).get(endpoint_key(endpoint_id))
        if row is None:
            raise NotFound(f"Endpoint {endpoint_id!r} not found in application {app_id!r}")
        return endpoint_response(app_id, row, user_attributes_by_id(tx, app_id, [row]).get(row.user_id or ""))

    return await db.read(work)


async def delete_endpoint(db: Database, app_id: str, endpoint_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        key = endpoint_key(endpoint_id)
        row = endpoint_store.fetch(tx, app_id, [key]).get(key)
        if row is None:
            raise NotFound(f"Endpoint {endpoint_id!r} not found in application {app_id!r}")
        response = endpoint_response(app_id, row, user_attributes_by_id(tx, app_id, [row]).get(row.user_id or ""))
        endpoint_store.delete(tx, app_id, [key])
        tx.record(EndpointsDeleted(app_id, (row.id,)))
        return response

    return await db.write(work)


async def get_user_endpoints(db: Database, app_id: str, user_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        return {"Item": _user_endpoints(tx, app_id, user_id)}

    return await db.read(work)


async def delete_user_endpoints(db: Database, app_id: str, user_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        items = _user_endpoints(tx, app_id, user_id)
        endpoint_store.delete_user(tx, app_id, user_id)
        tx.record(EndpointsDeleted(app_id, tuple(item["Id"] for item in items)))
        return {"Item": items}

    return await db.write(work)


def _user_endpoints(tx: Transaction, app_id: str, user_id: str) -> list[dict[str, Any]]:
    rows = endpoint_store.of_user(tx, app_id, user_id)
    if not rows:
        raise NotFound(f"User {user_id!r} has no endpoints in application {app_id!r}")
    attributes = user_attributes_by_id(tx, app_id, rows).get(user_id)
    return [endpoint_response(app_id, row, attributes) for row in rows]


async def remove_attributes(db: Database, app_id: str, attribute_type: str, blacklist: list[str]) -> dict[str, Any]:
    """Stop capturing the named attributes from now on; endpoints keep the values they already have."""
    if attribute_type not in rules.ATTRIBUTE_KINDS:
        raise BadRequest(f"attribute-type must be one of {', '.join(rules.ATTRIBUTE_KINDS)}, not {attribute_type!r}")

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        stored = endpoint_store.attribute_filters(tx, app_id).get(attribute_type)
        patterns = sorted(set(msgspec.json.decode(stored) if stored else []) | set(blacklist))
        endpoint_store.put_attribute_filter(tx, app_id, attribute_type, _dumps(patterns))
        tx.record(AppSettingsChanged(app_id))
        return {"ApplicationId": app_id, "AttributeType": attribute_type, "Attributes": patterns}

    return await db.write(work)


def user_attributes_by_id(tx: Transaction, app_id: str, rows: list[EndpointRow]) -> dict[str, dict[str, list[str]]]:
    user_ids = sorted({row.user_id for row in rows if row.user_id})
    return {uid: msgspec.json.decode(a) for uid, a in endpoint_store.user_attributes(tx, app_id, user_ids).items()}
