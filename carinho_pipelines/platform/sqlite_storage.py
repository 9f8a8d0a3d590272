"""Dagster's SQLite storage for the embedded default, without its per-instance costs.

The SQLite counterpart of :mod:`.storage`. Every sensor tick builds a fresh
``DagsterInstance`` in the code server, and every read opens a connection. On SQLite,
Dagster's run and schedule storages check the database's alembic revision each time one
is created (alembic reads its migration scripts from disk to do it), and every
connection starts with a new SQLAlchemy engine. py-spy of the idle embedded stack
(issue 12): about half of the code server's CPU was rebuilding storage, mostly that
revision check; the daemon spent a third of its samples creating engines and
reflecting table names for each tick.

These subclasses change only that:

* the create-or-migrate check runs once per process and file;
* one engine per process and file, with a pool of open connections: Dagster's
  ``NullPool`` opened (and closed) a SQLite connection for every statement group, which
  a burst does thousands of times a second across the run workers and the webserver
  (0.086 → 0.034 ms of CPU per connect and query, measured alone; benchmarks/README.md).
  A forked child drops its parent's engines without closing their connections;
* the "does the schema have X yet" checks remember a *yes*, as in :mod:`.storage`.

Tables, queries, files and migrations are Dagster's own.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from .dagster_internals import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurableClassData,
    ConsolidatedSqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    create_db_conn_string,
    create_sqlite_engine,
)
from .schema_checks import remember_yes

#: connections a process keeps open per file, and may add while its threads (the
#: daemon's, the webserver's) all read at once; SQLite still lets one of them write at a time
POOL_SIZE = 4
MAX_OVERFLOW = 16
#: files a process keeps engines for (an instance has three; older ones are closed)
MAX_FILES = 12

_engines: dict[tuple[int, str], sa.Engine] = {}
_checked: set[tuple[int, type, str]] = set()
_lock = threading.Lock()


def shared_engine(conn_string: str, **connect_args: Any) -> sa.Engine:
    """The process's engine for one SQLite file (a new one after a fork)."""
    key = (os.getpid(), conn_string)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create_sqlite_engine(
                conn_string, poolclass=QueuePool, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
                connect_args=connect_args)
            while len(_engines) > MAX_FILES:  # a process that opened many instances (tests)
                _engines.pop(next(iter(_engines))).dispose()  # connections in use close on return
    return engine


def _forget_parent_engines() -> None:
    """In a forked child (a Celery pool process): never use, nor close, the parent's
    SQLite connections (SQLite forbids carrying a connection across a fork); the child
    opens its own."""
    global _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_parent_engines)


@contextmanager
def _connect(conn_string: str, **connect_args: Any) -> Iterator[sa.Connection]:
    with shared_engine(conn_string, **connect_args).connect() as conn:
        with conn.begin():
            yield conn


class _CheckedOnce:
    """Dagster's ``from_local`` (create tables, stamp or migrate) the first time this
    process opens ``base_dir``; after that, just the object, on the shared engine.
    ``_stock`` is the Dagster class, ``_file`` its database file's name."""

    _stock: Any
    _file: str

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None) -> Any:
        key = (os.getpid(), cls, base_dir)
        if key in _checked:
            return cls(create_db_conn_string(base_dir, cls._file), inst_data)
        storage = cls._stock.from_local.__func__(cls, base_dir, inst_data=inst_data)
        _checked.add(key)
        return storage

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with _connect(self._conn_string) as conn:
            yield conn


class CachedSqliteRunStorage(_CheckedOnce, SqliteRunStorage):
    """Dagster's ``SqliteRunStorage`` (``<base_dir>/runs.db``), checked once per process."""

    _stock, _file = SqliteRunStorage, "runs"


class CachedSqliteScheduleStorage(_CheckedOnce, SqliteScheduleStorage):
    """Dagster's ``SqliteScheduleStorage`` (``<base_dir>/schedules.db``), checked once per process."""

    _stock, _file = SqliteScheduleStorage, "schedules"

    has_instigators_table = remember_yes(SqliteScheduleStorage.has_instigators_table)
    has_secondary_index_table = remember_yes(SqliteScheduleStorage.has_secondary_index_table)
    has_built_index = remember_yes(SqliteScheduleStorage.has_built_index)


class CachedConsolidatedSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """Dagster's ``ConsolidatedSqliteEventLogStorage`` (one WAL file for every run) on
    one engine per process."""

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        with _connect(self._conn_string, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
            yield conn

    has_table = remember_yes(ConsolidatedSqliteEventLogStorage.has_table)
    has_secondary_index = remember_yes(ConsolidatedSqliteEventLogStorage.has_secondary_index)
