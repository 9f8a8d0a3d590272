"""The event store: the relay commits every accepted webhook here before answering
2xx; the Dagster sensor reads it. SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .clock import as_utc, utcnow
from .engine import POOL_SIZE, dialect_insert, make_engine
from carinho_pipelines.kernel import person_keys

from .tables import event_person_keys, events, metadata, whatsapp_connection, whatsapp_message_status

log = logging.getLogger(__name__)

#: Z-API message statuses in the only order they may move (CONTRACTS §2.1).
STATUS_RANK = {"SENT": 1, "RECEIVED": 2, "READ": 3, "PLAYED": 4}


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the write; nothing was committed."""


@dataclass(frozen=True)
class Envelope:
    """The canonical event, as normalised by the relay."""

    event_type: str
    source: str
    idempotency_key: str
    queue: str
    payload: dict[str, Any]
    occurred_at: dt.datetime
    available_at: dt.datetime | None = None
    filtered_reason: str | None = None


@dataclass(frozen=True)
class Ingested:
    event_id: int
    duplicate: bool


_INGEST_COLUMNS = (
    "event_type", "source", "idempotency_key", "queue", "payload",
    "occurred_at", "received_at", "available_at", "filtered_reason",
)
#: The ingest INSERT (same SQL on PostgreSQL and SQLite ≥ 3.35). Written as text on
#: purpose: SQLAlchemy 2.0 never caches a dialect ``insert().on_conflict_do_nothing()``
#: (its cache key is None), so that form was compiled on every request — about 1 ms of
#: CPU, half of the relay's store cost. A text clause is cached; the typed bind
#: parameters keep the columns' JSON and DateTime processing.
_INGEST = (
    sa.text(
        f"INSERT INTO events ({', '.join(_INGEST_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in _INGEST_COLUMNS)}) "
        "ON CONFLICT (source, idempotency_key) DO NOTHING RETURNING id"
    )
    .bindparams(*(sa.bindparam(c, type_=events.c[c].type) for c in _INGEST_COLUMNS))
    .columns(events.c.id)
)


def _insert_keys(conn: sa.Connection, event_id: int, keys: set[tuple[str, str]]) -> None:
    conn.execute(event_person_keys.insert(), [{"event_id": event_id, "kind": k, "digest": d} for k, d in sorted(keys)])


class EventStore:
    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self._lock = threading.Lock()
        size = getattr(self.engine.pool, "size", None)
        #: ingests run at once by the relay: the pool's kept connections
        self.write_slots: int = size() if callable(size) else POOL_SIZE

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_all(self) -> None:
        """Create the schema directly (tests of the embedded default; production uses
        ``carinho db upgrade``)."""
        metadata.create_all(self.engine)

    def ping(self) -> float:
        start = utcnow()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(str(exc.__class__.__name__)) from exc
        return (utcnow() - start).total_seconds() * 1000

    # -- writes ---------------------------------------------------------------

    def ingest(self, env: Envelope, *, status_update: tuple[str, Iterable[str]] | None = None) -> Ingested:
        """Commit ``env`` unless (source, idempotency_key) exists; return its id.

        The unique constraint decides, so concurrent duplicates are safe. With
        ``status_update`` (a WhatsApp status and its message ids) the status table is
        moved forward in the same transaction, and an event that moves nothing forward
        is recorded as filtered (``stale_status``) so it is never dispatched.
        """
        now = utcnow()
        row = {
            "event_type": env.event_type,
            "source": env.source,
            "idempotency_key": env.idempotency_key,
            "queue": env.queue,
            "payload": env.payload,
            "occurred_at": as_utc(env.occurred_at),
            "received_at": now,
            "available_at": as_utc(env.available_at) or now,
            "filtered_reason": env.filtered_reason,
        }
        keys = person_keys.keys_of(env.payload)
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(_INGEST, row).scalar()
                if new_id is not None and keys:
                    _insert_keys(conn, new_id, keys)
                if new_id is None:
                    existing = conn.execute(
                        sa.select(events.c.id).where(
                            events.c.source == env.source,
                            events.c.idempotency_key == env.idempotency_key,
                        )
                    ).scalar_one()
                    return Ingested(int(existing), True)
                if status_update is not None and env.filtered_reason is None:
                    status, ids = status_update
                    if not self._advance_statuses(conn, status, ids, now):
                        conn.execute(
                            events.update().where(events.c.id == new_id).values(filtered_reason="stale_status")
                        )
                return Ingested(int(new_id), False)
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(exc.__class__.__name__) from exc
        except sa.exc.InterfaceError as exc:
            raise StoreUnavailable(exc.__class__.__name__) from exc
        except sa.exc.ProgrammingError as exc:  # e.g. schema not migrated
            raise StoreUnavailable(exc.__class__.__name__) from exc

    def ingest_many(self, envs: list[Envelope]) -> list[Ingested]:
        """Commit several events in **one** transaction (group commit): one pool
        checkout and one commit (one WAL flush) for the batch instead of one per event.
        Each answer still means "committed". Duplicates, also within the batch, are
        decided by the unique constraint exactly as in :meth:`ingest`."""
        now = utcnow()
        out: list[Ingested] = []
        key = person_keys.secret()
        try:
            with self.engine.begin() as conn:
                for env in envs:
                    row = {
                        "event_type": env.event_type,
                        "source": env.source,
                        "idempotency_key": env.idempotency_key,
                        "queue": env.queue,
                        "payload": env.payload,
                        "occurred_at": as_utc(env.occurred_at),
                        "received_at": now,
                        "available_at": as_utc(env.available_at) or now,
                        "filtered_reason": env.filtered_reason,
                    }
                    new_id = conn.execute(_INGEST, row).scalar()
                    if new_id is None:
                        existing = conn.execute(
                            sa.select(events.c.id).where(
                                events.c.source == env.source, events.c.idempotency_key == env.idempotency_key
                            )
                        ).scalar_one()
                        out.append(Ingested(int(existing), True))
                    else:
                        if key is not None and (keys := person_keys.keys_of(env.payload, key)):
                            _insert_keys(conn, new_id, keys)
                        out.append(Ingested(int(new_id), False))
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ProgrammingError) as exc:
            raise StoreUnavailable(exc.__class__.__name__) from exc
        except sa.exc.SQLAlchemyError:
            if len(envs) == 1:
                raise
            # one event's problem must not fail the others: commit them one by one
            return [self.ingest(env) for env in envs]
        return out

    def _advance_statuses(self, conn: sa.Connection, status: str, ids: Iterable[str], now: dt.datetime) -> bool:
        rank = STATUS_RANK.get(status.upper())
        if rank is None:
            return True  # statuses outside the ladder (READ_BY_ME, FAILED…) are passed on as they are
        insert = dialect_insert(self.dialect)
        moved = False
        for message_id in sorted(set(ids)):
            stmt = insert(whatsapp_message_status).values(
                message_id=message_id, status=status.upper(), rank=rank, updated_at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["message_id"],
                set_={"status": stmt.excluded.status, "rank": stmt.excluded.rank, "updated_at": stmt.excluded.updated_at},
                where=whatsapp_message_status.c.rank < stmt.excluded.rank,
            ).returning(whatsapp_message_status.c.message_id)
            if conn.execute(stmt).first() is not None:
                moved = True
        return moved

    def record_connection(self, instance_id: str, connected: bool, error: str | None, occurred_at: dt.datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    whatsapp_connection.insert().values(
                        instance_id=instance_id,
                        connected=connected,
                        error=(error or None) and error[:255],
                        occurred_at=as_utc(occurred_at),
                        received_at=utcnow(),
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(exc.__class__.__name__) from exc

    # -- reads ----------------------------------------------------------------

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).mappings().first()
        return _aware(dict(row)) if row else None

    def message_status(self, message_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(whatsapp_message_status.c.status).where(whatsapp_message_status.c.message_id == message_id)
            ).scalar()

    def whatsapp_connection_state(self) -> dict[str, Any] | None:
        """The latest connection callback: ``{"connected", "since", "error"}``.

        ``since`` is when the current state began (the first callback of the current
        run of equal states)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(whatsapp_connection).order_by(whatsapp_connection.c.occurred_at.desc(), whatsapp_connection.c.id.desc()).limit(200)
            ).mappings().all()
        if not rows:
            return None
        current = rows[0]["connected"]
        since = as_utc(rows[0]["occurred_at"])
        for r in rows:
            if r["connected"] != current:
                break
            since = as_utc(r["occurred_at"])
        return {"connected": bool(current), "since": since, "error": rows[0]["error"]}


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    return {k: as_utc(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}


_shared: dict[str, EventStore] = {}
_shared_lock = threading.Lock()


def store_for(url: str) -> EventStore:
    """One store (engine and connection pool) per database URL per process."""
    with _shared_lock:
        if url not in _shared:
            _shared[url] = EventStore(url)
        return _shared[url]
