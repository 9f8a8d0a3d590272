"""How many calls one sync run has in flight per destination system: the
``sync_per_run`` column of the destinations table (destinations/limits.py).

A run never sends more than ``limit`` calls at once to a system (writes, confirms and
feed reads alike); retries wait for their backoff outside the slot. ``CARINHO_SYNC_CONCURRENCY``
overrides the table: one number for every system (``8``) or ``system=n`` pairs
(``financeiro=16,operacao=8``; the others keep the table's value). A run's
``concurrency`` config, when given, caps every destination for that run.

The limit is per run: the ``integrations-low`` queue runs at most two sync runs at once
(``queues.py``), so a system sees at most twice its limit from the syncs.
"""

from __future__ import annotations

import threading

from carinho_pipelines.destinations.limits import LIMITS
from carinho_pipelines.kernel import settings

ENV = "CARINHO_SYNC_CONCURRENCY"

#: calls in flight per destination and run (from the destinations table); a system not
#: listed gets ``DEFAULT``
DESTINATION_CONCURRENCY: dict[str, int] = {name: limit.sync_per_run for name, limit in LIMITS.items()}
DEFAULT = 4
MAX = 64


def _count(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV}: {where} must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX:
        raise ValueError(f"{ENV}: {where} must be between 1 and {MAX}, got {value}")
    return value


def concurrency_table(raw: str | None = None) -> dict[str, int]:
    """The table with ``CARINHO_SYNC_CONCURRENCY`` applied (``raw`` stands in for the variable)."""
    raw = settings.env(ENV) if raw is None else raw
    table = dict(DESTINATION_CONCURRENCY)
    if not raw or not raw.strip():
        return table
    raw = raw.strip()
    if "=" not in raw:
        value = _count(raw, "the value")
        return {name: value for name in (*table, "*")}
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ValueError(f"{ENV}: expected system=n pairs separated by commas, got {part!r}")
        table[name] = _count(value.strip(), name)
    return table


def limit_for(destination: str, cap: int | None = None, table: dict[str, int] | None = None) -> int:
    table = concurrency_table() if table is None else table
    limit = table.get(destination, table.get("*", DEFAULT))
    return min(limit, cap) if cap else limit


class Slots:
    """One bounded semaphore per destination, for one run."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.table = concurrency_table()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def limit(self, destination: str) -> int:
        return limit_for(destination, self.cap, self.table)

    def of(self, destination: str) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._semaphores.get(destination)
            if found is None:
                found = self._semaphores[destination] = threading.BoundedSemaphore(self.limit(destination))
            return found
