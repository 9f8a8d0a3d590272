"""The part every sync shares: write each item once, confirm it, record it, carry on.

For each planned item the ledger decides: already confirmed → skipped; written but not
confirmed (the confirm failed last time) → confirm only; otherwise write, record the
downstream id, then confirm. Items go in chunks: writes in parallel, the chunk's
written ids committed to the ledger, then the confirms. One item failing never stops
the others; the caller turns the failures into a failed run (the DLQ).

Calls are retried here (CONTRACTS §1: 5 attempts, exponential backoff with jitter,
``Retry-After`` honoured) and a destination that keeps being unavailable trips a
breaker, so the remaining items fail fast instead of each waiting through its backoff.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dagster import Config
from pydantic import Field

from ..errors import ERROR, UNAVAILABLE, ActionError
from ..resources.http import scrub
from .ledger import SyncLedger

#: consecutive unavailable failures (after retries) of one destination that trip its breaker
BREAKER_THRESHOLD = 5
#: longest single wait, whatever a Retry-After asks for (a run holds a queue slot meanwhile)
MAX_WAIT_SECONDS = 30.0


class SyncConfig(Config):
    """Run config of a sync (defaults are what the schedules use)."""

    concurrency: int = Field(default=4, ge=1, le=32, description="Items written/confirmed in parallel.")
    attempts: int = Field(default=5, ge=1, le=10, description="Attempts per call (CONTRACTS §1: 5 in all).")
    backoff_seconds: float = Field(default=0.5, ge=0, description="First backoff; doubles per attempt, with jitter.")
    chunk_size: int = Field(default=200, ge=1, description="Items per ledger commit.")


@dataclass
class Item:
    """One source item ready to sync."""

    source_id: str
    key: str  #: ledger item key (the source id)
    body: dict[str, Any]  #: what is written downstream
    row: dict[str, Any]  #: the source item as read
    downstream_id: str | None = None


@dataclass(frozen=True)
class ItemFailure:
    source_id: str
    stage: str  #: "write" or "confirm"
    error_class: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.source_id, "stage": self.stage, "error_class": self.error_class, "message": self.message}


@dataclass
class Outcome:
    written: list[Item] = field(default_factory=list)
    confirmed: list[Item] = field(default_factory=list)
    #: confirms of items written by an earlier run (their confirm had failed)
    confirm_retried: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)

    def failed_ids(self, stage: str | None = None) -> list[str]:
        return [f.source_id for f in self.failures if stage is None or f.stage == stage]


class Breaker:
    """Opens a destination after ``threshold`` consecutive unavailable failures in this run."""

    def __init__(self, threshold: int = BREAKER_THRESHOLD) -> None:
        self.threshold = threshold
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def is_open(self, destination: str) -> bool:
        with self._lock:
            return self._failures.get(destination, 0) >= self.threshold

    def record(self, destination: str, ok: bool) -> None:
        with self._lock:
            self._failures[destination] = 0 if ok else self._failures.get(destination, 0) + 1


class Caller:
    """Calls with the hub's retry policy and the run's breaker."""

    def __init__(self, config: SyncConfig, breaker: Breaker | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.attempts = config.attempts
        self.backoff = config.backoff_seconds
        self.breaker = breaker or Breaker()
        self.sleep = sleep

    def __call__(self, destination: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(1, self.attempts + 1):
            if self.breaker.is_open(destination):
                raise ActionError(
                    UNAVAILABLE,
                    f"not attempted: {destination} failed {self.breaker.threshold} times in a row in this run",
                    destination=destination,
                )
            try:
                result = fn()
            except ActionError as exc:
                if not exc.retryable or attempt == self.attempts:
                    if exc.retryable:
                        self.breaker.record(destination, ok=False)
                    raise
                self.sleep(self._wait(attempt, exc.retry_after))
            else:
                self.breaker.record(destination, ok=True)
                return result
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        return min(MAX_WAIT_SECONDS, max(backoff, retry_after or 0.0))


def failure_of(source_id: str, stage: str, exc: BaseException) -> ItemFailure:
    if isinstance(exc, ActionError):
        return ItemFailure(source_id, stage, exc.error_class, scrub(str(exc))[:300])
    return ItemFailure(source_id, stage, ERROR, scrub(f"{type(exc).__name__}: {exc}")[:300])


WriteFn = Callable[[Item], str]
ConfirmFn = Callable[[Item], None]


def sync_items(
    sync: str,
    items: Sequence[Item],
    *,
    ledger: SyncLedger,
    write: WriteFn,
    confirm: ConfirmFn,
    config: SyncConfig,
    run_id: str | None = None,
    partition_key: str | None = None,
) -> Outcome:
    """Write and confirm ``items`` once each (see the module docstring)."""
    outcome = Outcome()
    if not items:
        return outcome
    keys = [i.key for i in items]
    ledger.seen(sync, keys, partition_key)
    known = ledger.lookup(sync, keys)
    todo: list[Item] = []
    for item in items:
        row = known.get(item.key)
        if row is not None and row.confirmed:
            item.downstream_id = row.downstream_id
            outcome.skipped.append(item)
        elif row is not None and row.written:
            item.downstream_id = row.downstream_id
            todo.append(item)
        else:
            todo.append(item)

    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix=f"sync-{sync}")
    try:
        for start in range(0, len(todo), config.chunk_size):
            _chunk(sync, todo[start : start + config.chunk_size], ledger, write, confirm, pool, outcome, run_id)
    finally:
        pool.shutdown(wait=True)
    return outcome


def _chunk(sync: str, chunk: list[Item], ledger: SyncLedger, write: WriteFn, confirm: ConfirmFn,
           pool: ThreadPoolExecutor, outcome: Outcome, run_id: str | None) -> None:
    failures: list[ItemFailure] = []

    def do_write(item: Item) -> tuple[Item, str | None, BaseException | None]:
        try:
            return item, str(write(item)), None
        except Exception as exc:  # one bad item never stops the others
            return item, None, exc

    to_write = [i for i in chunk if i.downstream_id is None]
    retrying = [i for i in chunk if i.downstream_id is not None]
    written: list[Item] = []
    for item, downstream_id, exc in pool.map(do_write, to_write):
        if exc is not None:
            failures.append(failure_of(item.source_id, "write", exc))
        else:
            item.downstream_id = downstream_id
            written.append(item)
    # committed before any confirm is sent: a crash from here on never writes again
    ledger.record_written(sync, [(i.key, i.downstream_id or "") for i in written], run_id)
    outcome.written.extend(written)

    def do_confirm(item: Item) -> tuple[Item, BaseException | None]:
        try:
            confirm(item)
            return item, None
        except Exception as exc:
            return item, exc

    confirmed: list[Item] = []
    for item, exc in pool.map(do_confirm, written + retrying):
        if exc is not None:
            failures.append(failure_of(item.source_id, "confirm", exc))
        else:
            confirmed.append(item)
    ledger.record_confirmed(sync, [i.key for i in confirmed])
    retried_ids = {id(i) for i in retrying}
    outcome.confirmed.extend(confirmed)
    outcome.confirm_retried.extend(i for i in confirmed if id(i) in retried_ids)
    by_key = {i.source_id: i.key for i in chunk}
    ledger.record_failed(sync, [(by_key[f.source_id], f"{f.stage}: {f.message}") for f in failures])
    outcome.failures.extend(failures)


def wire_id(value: str | None) -> int | str | None:
    """A downstream id as the system gave it: the ledger keeps text, Laravel ids are integers."""
    if value is not None and value.isdigit() and not (len(value) > 1 and value.startswith("0")):
        return int(value)
    return value
