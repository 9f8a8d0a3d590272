"""The event store's SQLAlchemy engine: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from carinho_pipelines.kernel import settings

from .liveness import check_on_checkout


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


#: Connections kept open to PostgreSQL, and how many ingests the relay runs at once
#: (``webhooks.commit`` takes one of :attr:`EventStore.write_slots` per ingest). A burst
#: waits in the event loop, not in dozens of threads fighting over the GIL and the pool,
#: and never needs an overflow connection: those are closed when returned, so every
#: ingest that used one paid for a new PostgreSQL backend.
POOL_SIZE = 10


def make_engine(url: str | None = None) -> Engine:
    url = url or settings.database_url()
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=10,
        pool_timeout=5,
        connect_args={"connect_timeout": 3} if url.startswith("postgresql") else {},
    )
    # a connection PostgreSQL closed (restart, idle timeout) is replaced before use,
    # without pool_pre_ping's round trip on every checkout
    return check_on_checkout(engine)


def dialect_insert(dialect_name: str):
    """The dialect's ``insert`` (for ``on_conflict_do_nothing``/``do_update``): PostgreSQL's or SQLite's."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert
