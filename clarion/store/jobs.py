"""Import and export jobs, their pieces, and the members import jobs give IMPORT segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store import changes
from clarion.store.database import Row, Transaction
from clarion.store.endpoints import _COLUMNS as ENDPOINT_COLUMNS
from clarion.store.endpoints import EndpointRow

MAX_FAILURES_KEPT = 100  # Pinpoint reports the first 100 failures of a job


@dataclass(frozen=True, slots=True)
class JobRow:
    seq: int
    app_id: str
    id: str
    job_type: str
    segment_id: str | None
    status: str
    definition: str
    created_at: str
    completed_at: str | None
    total_pieces: int
    completed_pieces: int
    failed_pieces: int
    total_processed: int
    total_failures: int
    failures: str  # JSON list


@dataclass(frozen=True, slots=True)
class PieceRow:
    piece: int
    source: str
    status: str
    position: int
    cursor: str | None


_JOB = (
    "seq, app_id, id, job_type, segment_id, status, definition, created_at, completed_at, total_pieces, "
    "completed_pieces, failed_pieces, total_processed, total_failures, failures"
)


def insert(
    tx: Transaction, app_id: str, job_id: str, job_type: str, segment_id: str | None, definition: str, created_at: str
) -> None:
    tx.execute(
        "INSERT INTO jobs (app_id, id, job_type, segment_id, status, definition, created_at, total_pieces, "
        "completed_pieces, failed_pieces, total_processed, total_failures, failures) "
        "VALUES (?, ?, ?, ?, 'CREATED', ?, ?, 0, 0, 0, 0, 0, '[]')",
        (app_id, job_id, job_type, segment_id, definition, created_at),
    )


def get(tx: Transaction, app_id: str, job_id: str, job_type: str, *, lock: bool = False) -> JobRow | None:
    row = tx.fetchone(
        f"SELECT {_JOB} FROM jobs WHERE app_id = ? AND id = ? AND job_type = ?{tx.dialect.for_update if lock else ''}",
        (app_id, job_id, job_type),
    )
    return JobRow(*row) if row else None


def page(
    tx: Transaction, app_id: str, job_type: str, segment_id: str | None, after_seq: int, limit: int
) -> list[JobRow]:
    """A project's jobs of one type (of one segment, if given), newest first after a cursor (0: from the top)."""
    where = "app_id = ? AND job_type = ?"
    params: list[object] = [app_id, job_type]
    if segment_id is not None:
        where += " AND segment_id = ?"
        params.append(segment_id)
    if after_seq:
        where += " AND seq < ?"
        params.append(after_seq)
    rows = tx.fetchall(f"SELECT {_JOB} FROM jobs WHERE {where} ORDER BY seq DESC LIMIT ?", (*params, limit))
    return [JobRow(*row) for row in rows]


def set_status(tx: Transaction, job_id: str, status: str, completed_at: str | None = None) -> None:
    tx.execute("UPDATE jobs SET status = ?, completed_at = ? WHERE id = ?", (status, completed_at, job_id))


def add_pieces(tx: Transaction, app_id: str, job_id: str, sources: Sequence[str]) -> None:
    tx.insert_rows(
        "INSERT INTO job_pieces (app_id, job_id, piece, source, status, position)",
        [(app_id, job_id, n, source, "PROCESSING", 0) for n, source in enumerate(sources)],
    )
    tx.execute("UPDATE jobs SET total_pieces = total_pieces + ? WHERE id = ?", (len(sources), job_id))


def get_piece(tx: Transaction, job_id: str, piece: int) -> PieceRow | None:
    row = tx.fetchone(
        "SELECT piece, source, status, position, cursor FROM job_pieces WHERE job_id = ? AND piece = ?",
        (job_id, piece),
    )
    return PieceRow(*row) if row else None


def set_piece(tx: Transaction, job_id: str, piece: int, status: str, position: int, cursor: str | None) -> None:
    tx.execute(
        "UPDATE job_pieces SET status = ?, position = ?, cursor = ? WHERE job_id = ? AND piece = ?",
        (status, position, cursor, job_id, piece),
    )


def add_progress(
    tx: Transaction,
    job: JobRow,
    processed: int,
    failures: int,
    reasons: str,
    completed_pieces: int = 0,
    failed_pieces: int = 0,
) -> None:
    """Count rows and pieces; `reasons` is the job's new failure list (already capped)."""
    tx.execute(
        "UPDATE jobs SET total_processed = total_processed + ?, total_failures = total_failures + ?, failures = ?, "
        "completed_pieces = completed_pieces + ?, failed_pieces = failed_pieces + ? WHERE id = ?",
        (processed, failures, reasons, completed_pieces, failed_pieces, job.id),
    )


def set_total_pieces(tx: Transaction, job_id: str, total: int) -> None:
    tx.execute("UPDATE jobs SET total_pieces = ? WHERE id = ?", (total, job_id))


def add_members(tx: Transaction, app_id: str, segment_id: str, keys: Sequence[str]) -> None:
    """Members on the change feed, so the analytics replica holds them too (a member already there keeps its stamp:
    the replica has it)."""
    if not keys:
        return
    seq = changes.next_seq(tx)
    tx.insert_rows(
        "INSERT INTO segment_imports (app_id, segment_id, endpoint_key, change_seq)",
        [(app_id, segment_id, key, seq) for key in sorted(set(keys))],
        "ON CONFLICT (app_id, segment_id, endpoint_key) DO NOTHING",
    )


def clear_members(tx: Transaction, app_id: str, segment_id: str) -> None:
    """Forget a segment's imported members; a tombstone tells the replica to forget those it holds."""
    if tx.execute("DELETE FROM segment_imports WHERE app_id = ? AND segment_id = ?", (app_id, segment_id)):
        changes.record_deleted(tx, changes.next_seq(tx), app_id, "segment", [segment_id])


def member_channel_counts(tx: Transaction, app_id: str, segment_id: str) -> tuple[int, dict[str, int]]:
    """(members, existing member endpoints per channel) of an imported segment."""
    size = int(
        tx.scalar("SELECT count(*) FROM segment_imports WHERE app_id = ? AND segment_id = ?", (app_id, segment_id))
    )
    rows = tx.fetchall(
        "SELECT e.channel_type, count(*) FROM segment_imports s JOIN endpoints e "
        "ON e.app_id = s.app_id AND e.endpoint_key = s.endpoint_key "
        "WHERE s.app_id = ? AND s.segment_id = ? AND e.channel_type IS NOT NULL GROUP BY e.channel_type",
        (app_id, segment_id),
    )
    return size, {channel: int(n) for channel, n in rows}


def user_endpoint_keys(tx: Transaction, app_id: str, user_ids: Sequence[str]) -> list[str]:
    if not user_ids:
        return []
    listed, params = tx.dialect.one_of("user_id", sorted(set(user_ids)))
    return [
        r[0]
        for r in tx.fetchall(f"SELECT endpoint_key FROM endpoints WHERE app_id = ? AND {listed}", (app_id, *params))
    ]


def endpoints_after(tx: Transaction, app_id: str, after_key: str, limit: int) -> list[EndpointRow]:
    """A project's endpoints in key order after a cursor."""
    rows: list[Row] = tx.fetchall(
        f"SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ? AND endpoint_key > ? ORDER BY endpoint_key LIMIT ?",
        (app_id, after_key, limit),
    )
    return [EndpointRow(*row) for row in rows]


def endpoints_by_key(tx: Transaction, app_id: str, keys: Sequence[str]) -> list[EndpointRow]:
    """These endpoints (those that exist), in key order; read without locking them."""
    if not keys:
        return []
    listed, params = tx.dialect.one_of("endpoint_key", keys)
    rows: list[Row] = tx.fetchall(
        f"SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ? AND {listed} ORDER BY endpoint_key",
        (app_id, *params),
    )
    return [EndpointRow(*row) for row in rows]
