"""The part every sync shares: write each item once, confirm it, record it, carry on.

For each planned item the ledger decides: already confirmed → skipped; written but not
confirmed (the confirm failed last time) → confirm only; otherwise write, record the
downstream id, then confirm. Items arrive page by page (:func:`sync_pages`): each page
is looked up in the ledger in one query, its writes go to a bounded pool while the next
page is read, and written ids are committed to the ledger in batches of ``chunk_size``.
The confirms are sent once the whole feed has been read and every write committed: a
pending feed loses its confirmed items, and with page-number paging confirming while
reading would shift later items onto pages already read. One item failing never stops
the others; the caller turns the failures into a failed run (the DLQ).

Memory does not grow with the feed beyond a few hundred bytes per item: a done item
keeps only its ids (the first written ones keep their body for the run's preview), and
at most a few pages are in flight at once.

Calls are retried here (CONTRACTS §1: 5 attempts, exponential backoff with jitter,
``Retry-After`` honoured), each attempt holding one of its destination's slots
(:mod:`.limits`), and a destination that keeps being unavailable trips a breaker, so
the remaining items fail fast instead of each waiting through its backoff.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dagster import Config
from pydantic import Field

from carinho_pipelines.kernel.errors import ERROR, UNAVAILABLE, ActionError
from ..resources.http import scrub
from .batch import PREVIEW_ROWS
from .ledger import SyncLedger
from .limits import Slots

#: consecutive unavailable failures (after retries) of one destination that trip its breaker
BREAKER_THRESHOLD = 5
#: longest single wait, whatever a Retry-After asks for (a run holds a queue slot meanwhile)
MAX_WAIT_SECONDS = 30.0


class SyncConfig(Config):
    """Run config of a sync (defaults are what the schedules use)."""

    concurrency: int | None = Field(
        default=None, ge=1, le=64,
        description="Caps the calls in flight per destination for this run; empty = the table in "
        "carinho_pipelines/syncs/limits.py (CARINHO_SYNC_CONCURRENCY overrides it).",
    )
    attempts: int = Field(default=5, ge=1, le=10, description="Attempts per call (CONTRACTS §1: 5 in all).")
    backoff_seconds: float = Field(default=0.5, ge=0, description="First backoff; doubles per attempt, with jitter.")
    chunk_size: int = Field(default=200, ge=1, description="Items per ledger commit.")



@dataclass(slots=True)
class Item:
    """One source item ready to sync."""

    source_id: str
    key: str  #: ledger item key (the source id)
    body: dict[str, Any]  #: what is written downstream
    row: dict[str, Any]  #: the source item as read
    downstream_id: str | None = None

    def release(self, keep_body: bool = False) -> None:
        """Done with the payloads: only the ids stay (memory per item stays small)."""
        self.row = _RELEASED
        if not keep_body:
            self.body = _RELEASED


_RELEASED: dict[str, Any] = {}


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
                 sleep: Callable[[float], None] = time.sleep, slots: Slots | None = None) -> None:
        self.attempts = config.attempts
        self.backoff = config.backoff_seconds
        self.breaker = breaker or Breaker()
        self.sleep = sleep
        self.slots = slots or Slots(config.concurrency)

    def limit(self, destination: str) -> int:
        """Calls this run may have in flight to ``destination``."""
        return self.slots.limit(destination)

    def __call__(self, destination: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(1, self.attempts + 1):
            if self.breaker.is_open(destination):
                raise ActionError(
                    UNAVAILABLE,
                    f"not attempted: {destination} failed {self.breaker.threshold} times in a row in this run",
                    destination=destination,
                )
            try:
                with self.slots.of(destination):
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
    workers: int = 4,
) -> Outcome:
    """Write and confirm ``items`` once each (one page; see :func:`sync_pages`)."""
    return sync_pages(sync, [list(items)], ledger=ledger, write=write, confirm=confirm, config=config,
                      run_id=run_id, partition_key=partition_key, workers=workers)


def sync_pages(
    sync: str,
    pages: Iterable[list[Item]],
    *,
    ledger: SyncLedger,
    write: WriteFn,
    confirm: ConfirmFn,
    config: SyncConfig,
    run_id: str | None = None,
    partition_key: str | None = None,
    workers: int = 4,
) -> Outcome:
    """Write and confirm every item of ``pages`` once (see the module docstring).

    ``pages`` is read lazily: a page is asked for while earlier writes are in flight, and
    no more than ``window`` writes wait at once. ``workers`` threads send the calls (each
    call also holds a slot of its destination, see :class:`Caller`).
    """
    outcome = Outcome()
    run = _Run(sync, ledger, config, run_id, outcome)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"sync-{sync}")
    window = max(config.chunk_size, 4 * workers)
    pending: deque[tuple[Item, Future[tuple[str | None, BaseException | None]]]] = deque()

    def do_write(item: Item) -> tuple[str | None, BaseException | None]:
        try:
            return str(write(item)), None
        except Exception as exc:  # one bad item never stops the others
            return None, exc

    def settle(keep: int) -> None:
        """Take finished writes in feed order, until at most ``keep`` are waiting."""
        while pending and (len(pending) > keep or pending[0][1].done()):
            item, future = pending.popleft()
            downstream_id, exc = future.result()
            if exc is not None:
                run.failed(item, "write", exc)
                item.release()
                continue
            item.downstream_id = downstream_id
            outcome.written.append(item)
            item.release(keep_body=len(outcome.written) <= PREVIEW_ROWS)
            run.written(item)

    try:
        for page in pages:
            if not page:
                continue
            keys = [i.key for i in page]
            ledger.seen(sync, keys, partition_key)
            known = ledger.lookup(sync, keys)
            for item in page:
                row = known.get(item.key)
                if row is not None and row.confirmed:
                    item.downstream_id = row.downstream_id
                    item.release()
                    outcome.skipped.append(item)
                elif row is not None and row.written:  # an earlier run's confirm failed: confirm only
                    item.downstream_id = row.downstream_id
                    item.release()
                    run.to_confirm.append(item)
                    run.retrying.add(id(item))
                else:
                    pending.append((item, pool.submit(do_write, item)))
            settle(keep=window)
        settle(keep=0)
        # committed before any confirm is sent: a crash from here on never writes again
        run.flush_written()
        run.flush_failed()

        def do_confirm(item: Item) -> BaseException | None:
            try:
                confirm(item)
                return None
            except Exception as exc:
                return exc

        confirmed: list[Item] = []
        for item, exc in zip(run.to_confirm, pool.map(do_confirm, run.to_confirm)):
            if exc is not None:
                run.failed(item, "confirm", exc)
                continue
            confirmed.append(item)
            if len(confirmed) >= config.chunk_size:
                run.confirmed(confirmed)
                confirmed = []
        run.confirmed(confirmed)
        run.flush_failed()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)
    return outcome


class _Run:
    """The ledger bookkeeping of one :func:`sync_pages` call, in batches."""

    def __init__(self, sync: str, ledger: SyncLedger, config: SyncConfig, run_id: str | None,
                 outcome: Outcome) -> None:
        self.sync, self.ledger, self.config, self.run_id, self.outcome = sync, ledger, config, run_id, outcome
        self._written: list[Item] = []
        self._failed: list[tuple[str, str]] = []
        #: written (now or by an earlier run) and committed: what the confirms go through
        self.to_confirm: list[Item] = []
        self.retrying: set[int] = set()

    def written(self, item: Item) -> None:
        self._written.append(item)
        if len(self._written) >= self.config.chunk_size:
            self.flush_written()

    def flush_written(self) -> None:
        if self._written:
            self.ledger.record_written(self.sync, [(i.key, i.downstream_id or "") for i in self._written], self.run_id)
            self.to_confirm.extend(self._written)
            self._written = []

    def failed(self, item: Item, stage: str, exc: BaseException) -> None:
        failure = failure_of(item.source_id, stage, exc)
        self.outcome.failures.append(failure)
        self._failed.append((item.key, f"{failure.stage}: {failure.message}"))
        if len(self._failed) >= self.config.chunk_size:
            self.flush_failed()

    def flush_failed(self) -> None:
        if self._failed:
            self.ledger.record_failed(self.sync, self._failed)
            self._failed = []

    def confirmed(self, items: list[Item]) -> None:
        if not items:
            return
        self.ledger.record_confirmed(self.sync, [i.key for i in items])
        self.outcome.confirmed.extend(items)
        self.outcome.confirm_retried.extend(i for i in items if id(i) in self.retrying)


def wire_id(value: str | None) -> int | str | None:
    """A downstream id as the system gave it: the ledger keeps text, Laravel ids are integers."""
    if value is not None and value.isdigit() and not (len(value) > 1 and value.startswith("0")):
        return int(value)
    return value
