"""In-memory state of one simulated system: its records, the calls it received, its faults.

Handlers run on the server thread while tests read and seed from the main thread, so
every access goes through the system's lock (and nothing awaits while holding it).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


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
            rows[str(record["id"])] = record
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
            self._next_ids.clear()
            self.faults = Faults(down=self.faults.down)
