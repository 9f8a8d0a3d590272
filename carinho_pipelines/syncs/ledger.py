"""The syncs' own record of what they wrote downstream (table ``sync_ledger``).

One row per (sync, source item): when the hub first saw it, when it was written and
under which downstream id, when the source system confirmed it. With the downstream
``Idempotency-Key`` and the source's own marks (``billed``, confirmed pending items) it
makes a re-run, a retry from the DLQ or a backfill write nothing twice, and lets a run
retry only the confirm of an item whose confirm failed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Engine

from carinho_pipelines.store import dialect_insert as _insert, as_utc, make_engine, utcnow
from carinho_pipelines.store.tables import sync_ledger

from carinho_pipelines.kernel import settings

#: keys per ``IN (...)`` (SQLite's variable limit is the tightest)
_CHUNK = 500
_MAX_ERROR = 500


@dataclass(frozen=True)
class LedgerRow:
    sync: str
    item_key: str
    partition_key: str | None
    first_seen_at: dt.datetime
    written_at: dt.datetime | None
    downstream_id: str | None
    confirmed_at: dt.datetime | None
    attempts: int
    last_error: str | None

    @property
    def written(self) -> bool:
        return self.written_at is not None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class SyncLedger:
    """Reads and writes ``sync_ledger``; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _insert(engine.dialect.name)

    def lookup(self, sync: str, item_keys: Sequence[str]) -> dict[str, LedgerRow]:
        found: dict[str, LedgerRow] = {}
        keys = list(dict.fromkeys(item_keys))
        with self.engine.connect() as conn:
            for chunk in _chunks(keys):
                rows = conn.execute(
                    sa.select(sync_ledger).where(sync_ledger.c.sync == sync, sync_ledger.c.item_key.in_(chunk))
                ).mappings()
                for row in rows:
                    found[row["item_key"]] = _row(row)
        return found

    def rows(self, sync: str, partition_key: str | None = None) -> list[LedgerRow]:
        query = sa.select(sync_ledger).where(sync_ledger.c.sync == sync)
        if partition_key is not None:
            query = query.where(sync_ledger.c.partition_key == partition_key)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query.order_by(sync_ledger.c.id)).mappings()]

    def seen(self, sync: str, item_keys: Sequence[str], partition_key: str | None = None) -> None:
        """Record items the first time a run sees them (kept as they are afterwards)."""
        if not item_keys:
            return
        now = utcnow()
        rows = [{"sync": sync, "item_key": k, "partition_key": partition_key, "first_seen_at": now, "attempts": 0,
                 "updated_at": now} for k in dict.fromkeys(item_keys)]
        stmt = self._insert(sync_ledger).on_conflict_do_nothing(index_elements=["sync", "item_key"])
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)  # executemany: SQLAlchemy sends multi-row VALUES, compiled once

    def record_written(self, sync: str, written: Sequence[tuple[str, str]], run_id: str | None = None) -> None:
        """``[(item_key, downstream_id)]`` were written (committed before any confirm is sent).

        One upsert sent as multi-row VALUES (the rows exist: :meth:`seen` made them)."""
        if not written:
            return
        now = utcnow()
        ids = {key: str(downstream_id)[:64] for key, downstream_id in written}  # one row per key
        insert = self._insert(sync_ledger)
        stmt = insert.on_conflict_do_update(
            index_elements=["sync", "item_key"],
            set_={"written_at": insert.excluded.written_at, "downstream_id": insert.excluded.downstream_id,
                  "last_error": None, "attempts": sync_ledger.c.attempts + 1,
                  "run_id": insert.excluded.run_id, "updated_at": insert.excluded.updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, [
                {"sync": sync, "item_key": k, "partition_key": None, "first_seen_at": now, "written_at": now,
                 "downstream_id": d, "attempts": 1, "run_id": run_id, "updated_at": now}
                for k, d in ids.items()
            ])

    def record_confirmed(self, sync: str, item_keys: Sequence[str]) -> None:
        if not item_keys:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for chunk in _chunks(list(item_keys)):
                conn.execute(
                    sync_ledger.update()
                    .where(sync_ledger.c.sync == sync, sync_ledger.c.item_key.in_(chunk))
                    .values(confirmed_at=now, last_error=None, updated_at=now)
                )

    def record_failed(self, sync: str, failures: Sequence[tuple[str, str]]) -> None:
        """``[(item_key, error)]``: the error is kept (masked text) for ops, attempts counted (one upsert)."""
        if not failures:
            return
        now = utcnow()
        errors: dict[str, str] = {}
        for key, error in failures:  # an item failing twice in a run (write, then...) keeps its last error
            errors[key] = error[:_MAX_ERROR]
        insert = self._insert(sync_ledger)
        stmt = insert.on_conflict_do_update(
            index_elements=["sync", "item_key"],
            set_={"last_error": insert.excluded.last_error, "attempts": sync_ledger.c.attempts + 1,
                  "updated_at": insert.excluded.updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, [
                {"sync": sync, "item_key": k, "partition_key": None, "first_seen_at": now, "last_error": e,
                 "attempts": 1, "updated_at": now}
                for k, e in errors.items()
            ])


def _row(row: sa.RowMapping) -> LedgerRow:
    return LedgerRow(
        sync=row["sync"],
        item_key=row["item_key"],
        partition_key=row["partition_key"],
        first_seen_at=as_utc(row["first_seen_at"]),  # type: ignore[arg-type]
        written_at=as_utc(row["written_at"]),
        downstream_id=row["downstream_id"],
        confirmed_at=as_utc(row["confirmed_at"]),
        attempts=int(row["attempts"] or 0),
        last_error=row["last_error"],
    )


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def ledger_for(url: str) -> SyncLedger:
    """One engine per database URL and process (runs in a warm worker reuse it)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
    return SyncLedger(engine)


class SyncLedgerResource(ConfigurableResource):
    """The sync ledger in the hub's database (``CARINHO_DATABASE_URL``; migrated by ``carinho db upgrade``)."""

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the hub's database; empty = CARINHO_DATABASE_URL or the local SQLite file.",
    )

    def ledger(self) -> SyncLedger:
        return ledger_for(self.database_url or settings.database_url())
