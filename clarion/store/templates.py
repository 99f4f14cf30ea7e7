"""Message templates and their versions: one `templates` row per (name, type), one `template_versions` row per
live version. Templates are account-level: no app_id, and DeleteApp leaves them alone."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class TemplateRow:
    """A template at one version (its active one, unless read by version)."""

    seq: int
    name: str
    template_type: str
    active_version: int
    last_version: int  # the highest version ever issued (deleted versions' numbers are not reused)
    created_at: str  # when the template was created
    version: int  # the version this row describes
    version_created_at: str
    modified_at: str  # when this version was last written
    body: str  # JSON of the type's request members, without tags


_SELECT = (
    "SELECT t.seq, t.name, t.template_type, t.active_version, t.last_version, t.created_at, v.version, "
    "v.created_at, v.modified_at, v.body FROM templates t "
    "JOIN template_versions v ON v.name = t.name AND v.template_type = t.template_type"
)


def insert(tx: Transaction, name: str, template_type: str, created_at: str, body: str) -> None:
    """A new template whose version 1 is also its active version."""
    tx.execute(
        "INSERT INTO templates (name, template_type, active_version, last_version, created_at) VALUES (?, ?, 1, 1, ?)",
        (name, template_type, created_at),
    )
    _insert_version(tx, name, template_type, 1, created_at, body)


def exists(tx: Transaction, name: str, template_type: str) -> bool:
    row = tx.fetchone("SELECT 1 FROM templates WHERE name = ? AND template_type = ?", (name, template_type))
    return row is not None


def lock(tx: Transaction, name: str, template_type: str) -> bool:
    """Hold the template's row until the transaction ends (concurrent updates); whether it exists."""
    row = tx.fetchone(
        f"SELECT 1 FROM templates WHERE name = ? AND template_type = ?{tx.dialect.for_update}", (name, template_type)
    )
    return row is not None


def get(tx: Transaction, name: str, template_type: str) -> TemplateRow | None:
    """The template at its active version."""
    row = tx.fetchone(
        f"{_SELECT} AND v.version = t.active_version WHERE t.name = ? AND t.template_type = ?", (name, template_type)
    )
    return TemplateRow(*row) if row else None


def get_version(tx: Transaction, name: str, template_type: str, version: int) -> TemplateRow | None:
    row = tx.fetchone(
        f"{_SELECT} WHERE t.name = ? AND t.template_type = ? AND v.version = ?", (name, template_type, version)
    )
    return TemplateRow(*row) if row else None


def latest_version(tx: Transaction, name: str, template_type: str) -> int:
    """The highest live version (0 if none)."""
    value = tx.scalar(
        "SELECT max(version) FROM template_versions WHERE name = ? AND template_type = ?", (name, template_type)
    )
    return int(value or 0)


def last_version(tx: Transaction, name: str, template_type: str) -> int:
    """The highest version ever issued, deleted or not."""
    value = tx.scalar("SELECT last_version FROM templates WHERE name = ? AND template_type = ?", (name, template_type))
    return int(value or 0)


def count_versions(tx: Transaction, name: str, template_type: str) -> int:
    value = tx.scalar(
        "SELECT count(*) FROM template_versions WHERE name = ? AND template_type = ?", (name, template_type)
    )
    return int(value or 0)


def add_version(tx: Transaction, name: str, template_type: str, version: int, created_at: str, body: str) -> None:
    """Append `version` (not made active); earlier versions stay."""
    tx.execute(
        "UPDATE templates SET last_version = ? WHERE name = ? AND template_type = ?", (version, name, template_type)
    )
    _insert_version(tx, name, template_type, version, created_at, body)


def overwrite_version(
    tx: Transaction, name: str, template_type: str, version: int, modified_at: str, body: str
) -> None:
    tx.execute(
        "UPDATE template_versions SET body = ?, modified_at = ? WHERE name = ? AND template_type = ? AND version = ?",
        (body, modified_at, name, template_type, version),
    )


def _insert_version(tx: Transaction, name: str, template_type: str, version: int, at: str, body: str) -> None:
    tx.execute(
        "INSERT INTO template_versions (name, template_type, version, created_at, modified_at, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (name, template_type, version, at, at, body),
    )


def set_active(tx: Transaction, name: str, template_type: str, version: int) -> None:
    tx.execute(
        "UPDATE templates SET active_version = ? WHERE name = ? AND template_type = ?", (version, name, template_type)
    )


def page(
    tx: Transaction, prefix: str | None, template_types: list[str], after_seq: int, limit: int
) -> list[TemplateRow]:
    """Templates at their active versions, in creation order after a cursor; `prefix` matches case-sensitively."""
    listed, params = tx.dialect.one_of("t.template_type", template_types)
    sql = f"{_SELECT} AND v.version = t.active_version WHERE t.seq > ? AND {listed}"
    values: list[object] = [after_seq, *params]
    if prefix:
        sql += " AND substr(t.name, 1, ?) = ?"
        values += [len(prefix), prefix]
    rows = tx.fetchall(f"{sql} ORDER BY t.seq LIMIT ?", (*values, limit))
    return [TemplateRow(*row) for row in rows]


def page_versions(tx: Transaction, name: str, template_type: str, after_version: int, limit: int) -> list[TemplateRow]:
    """One template's live versions, oldest first, after a cursor."""
    rows = tx.fetchall(
        f"{_SELECT} WHERE t.name = ? AND t.template_type = ? AND v.version > ? ORDER BY v.version LIMIT ?",
        (name, template_type, after_version, limit),
    )
    return [TemplateRow(*row) for row in rows]


def delete_version(tx: Transaction, name: str, template_type: str, version: int) -> None:
    tx.execute(
        "DELETE FROM template_versions WHERE name = ? AND template_type = ? AND version = ?",
        (name, template_type, version),
    )


def delete(tx: Transaction, name: str, template_type: str) -> None:
    tx.execute("DELETE FROM template_versions WHERE name = ? AND template_type = ?", (name, template_type))
    tx.execute("DELETE FROM templates WHERE name = ? AND template_type = ?", (name, template_type))
