"""In-memory state of one simulated system: its records, the calls it received, its faults.

Handlers run on the server thread while tests read and seed from the main thread, so
every access goes through the system's lock (and nothing awaits while holding it).

Each collection keeps its records in id order (a sorted index beside the dict), so a
feed page is read from where the previous one stopped (:meth:`SystemState.select`)
instead of sorting and copying the whole collection on every call.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


#: a record's place in its collection: integer ids first, numerically, then the others
SortKey = tuple[int, int | str]


def sort_key(record_id: Any) -> SortKey:
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        return (0, record_id)
    return (1, str(record_id))


@dataclass
class Selection:
    """One page of a collection: shallow projections (render them before releasing the lock)."""

    rows: list[dict[str, Any]]
    #: every matching record, when asked for (page-number paging); None otherwise
    total: int | None
    #: where the next page starts (after this key), None when nothing matches after the page
    next_after: SortKey | None


def now_iso() -> str:
    return datetime.now(SAO_PAULO).isoformat(timespec="seconds")


@dataclass
class Faults:
    """What a system does wrong on purpose (the admin API sets these)."""

    fail_status: int | None = None
    fail_count: int = 0
    retry_after: float | None = None
    latency: float = 0.0
    down: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "fail_status": self.fail_status,
            "fail_count": self.fail_count,
            "retry_after": self.retry_after,
            "latency": self.latency,
            "down": self.down,
        }


@dataclass
class StoredResponse:
    status: int
    body: bytes
    content_type: str


@dataclass
class SystemState:
    name: str
    token: str | None = None
    webhook_secret: str | None = None
    page_size: int = 100
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=Faults)
    calls: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    collections: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per collection, the sort keys of its records in order (see :func:`sort_key`)
    _order: dict[str, list[SortKey]] = field(default_factory=dict)
    _next_ids: dict[str, int] = field(default_factory=dict)
    #: bumped by reset: a request still sleeping in injected latency belongs to the old world
    generation: int = 0

    # -- records -----------------------------------------------------------------------

    def insert(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of ``record`` (an ``id`` is assigned when missing) and return it."""
        with self.lock:
            rows = self.collections.setdefault(collection, {})
            record = copy.deepcopy(record)
            if record.get("id") is None:
                record["id"] = self._next_id(collection)
            elif isinstance(record["id"], int):
                self._next_ids[collection] = max(self._next_ids.get(collection, 1), record["id"] + 1)
            key = str(record["id"])
            order = self._order.setdefault(collection, [])
            previous = rows.get(key)
            if previous is not None:
                old = sort_key(previous["id"])
                at = bisect.bisect_left(order, old)
                if at < len(order) and order[at] == old:
                    del order[at]
            new = sort_key(record["id"])
            at = bisect.bisect_left(order, new)
            if at == len(order) or order[at] != new:
                order.insert(at, new)
            rows[key] = record
            return copy.deepcopy(record)

    def _next_id(self, collection: str) -> int:
        value = self._next_ids.get(collection, 1)
        while str(value) in self.collections.get(collection, {}):
            value += 1
        self._next_ids[collection] = value + 1
        return value

    def get(self, collection: str, record_id: Any) -> dict[str, Any] | None:
        with self.lock:
            row = self.collections.get(collection, {}).get(str(record_id))
            return copy.deepcopy(row) if row is not None else None

    def update(self, collection: str, record_id: Any, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            row = self.collections.get(collection, {}).get(str(record_id))
            if row is None:
                return None
            row.update(copy.deepcopy(changes))
            return copy.deepcopy(row)

    def _in_order(self, collection: str, after: SortKey | None) -> Iterator[tuple[SortKey, dict[str, Any]]]:
        """Records after ``after`` in id order (caller holds the lock)."""
        order = self._order.get(collection, [])
        rows = self.collections.get(collection, {})
        at = 0 if after is None else bisect.bisect_right(order, after)
        for position in range(at, len(order)):
            key = order[position]
            yield key, rows[str(key[1])]

    def select(
        self,
        collection: str,
        where: Callable[[dict[str, Any]], bool],
        fields: tuple[str, ...] | None,
        *,
        limit: int | None,
        after: SortKey | None = None,
        offset: int = 0,
        count: bool = False,
    ) -> Selection:
        """Up to ``limit`` matching records after ``after`` (skipping ``offset`` matches), projected on ``fields`` (None = all).

        Without ``count`` it reads only the page and the records up to the next match,
        so a cursor walk reads each record about once in all; with ``count`` it scans
        the rest of the collection to give the total. Call it with the lock held and
        render the rows before releasing it: they share nested values with the records.
        """
        with self.lock:
            rows: list[dict[str, Any]] = []
            matched = 0
            last: SortKey | None = after  # the last record read before the next match
            next_after: SortKey | None = None
            for key, record in self._in_order(collection, after):
                hit = where(record)
                if hit:
                    matched += 1
                    if matched > offset and (limit is None or len(rows) < limit):
                        rows.append(dict(record) if fields is None else {f: record.get(f) for f in fields})
                    elif matched > offset and next_after is None:
                        # a match beyond the page: the next page starts right before it
                        next_after = last
                        if not count:
                            break
                if next_after is None:
                    last = key
            return Selection(rows, matched if count else None, next_after)

    def all(self, collection: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.collections.get(collection, {}).values()]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return {name: self.all(name) for name in self.collections}

    # -- calls and faults --------------------------------------------------------------

    def record_call(self, call: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(call)

    def list_calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.calls)

    def take_failure(self) -> tuple[int, float | None] | None:
        """The status to answer this call with, when a failure is scheduled."""
        with self.lock:
            f = self.faults
            if f.fail_status is None or f.fail_count <= 0:
                return None
            f.fail_count -= 1
            status, retry_after = f.fail_status, f.retry_after
            if f.fail_count == 0:
                f.fail_status = None
                f.retry_after = None
            return status, retry_after

    def clear_faults(self) -> None:
        with self.lock:
            down = self.faults.down
            self.faults = Faults(down=down)

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.calls.clear()
            self.idempotency.clear()
            self.in_flight.clear()
            self.collections.clear()
            self._order.clear()
            self._next_ids.clear()
            self.faults = Faults(down=self.faults.down)
