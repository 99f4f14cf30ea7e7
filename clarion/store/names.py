"""The custom names a project has used (attribute, metric and event names), which Pinpoint's quotas count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from clarion.domain_events import NamesAdded
from clarion.store.database import Transaction


class NameRegistry:
    """Per-process cache in front of `app_names`.

    Almost every write uses only names the project has used before; the cache lets those writes skip the table.
    A write that adds names records NamesAdded, which other processes sharing a PostgreSQL store hear within
    milliseconds (they drop their copy); on the embedded store several processes' quota checks may lag by what
    the others added.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], set[str]] = {}

    def known(self, tx: Transaction, app_id: str, kind: str) -> set[str]:
        names = self._known.get((app_id, kind))
        if names is None:
            rows = tx.fetchall("SELECT name FROM app_names WHERE app_id = ? AND kind = ?", (app_id, kind))
            names = self._known[(app_id, kind)] = {row[0] for row in rows}
        return names

    def add(self, tx: Transaction, app_id: str, kind: str, names: Iterable[str]) -> None:
        fresh = [name for name in names if name not in self.known(tx, app_id, kind)]
        if not fresh:
            return
        tx.insert_rows(
            "INSERT INTO app_names (app_id, kind, name)",
            [(app_id, kind, name) for name in fresh],
            "ON CONFLICT DO NOTHING",
        )
        self._known[(app_id, kind)].update(fresh)
        tx.record(NamesAdded(app_id, kind))  # other processes drop what they know of the project's names

    def names_added(self, event: NamesAdded) -> None:
        """Another process used names new to the project: read them again at the next write that needs them."""
        self._known.pop((event.app_id, event.kind), None)

    def clear(self) -> None:
        """Notices from other processes may have been missed: forget every project's names."""
        self._known.clear()

    @contextmanager
    def undone_on_error(self, app_id: str) -> Iterator[None]:
        """Around work whose transaction may roll back: forget what it registered if it fails."""
        try:
            yield
        except BaseException:
            self.forget(app_id)
            raise

    def forget(self, app_id: str) -> None:
        """Drop a deleted project's cache, and a rolled-back write's additions with it."""
        for key in [key for key in self._known if key[0] == app_id]:
            del self._known[key]
