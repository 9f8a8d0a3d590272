"""Dagster's PostgreSQL storage, with pooled connections (dagster.yaml ``storage: custom``).

dagster-postgres opens a new connection for every statement (``NullPool``, so that the
many short-lived ``DagsterInstance`` objects never pile up connections), and several of
its reads first reflect the schema (``has_run_stats_index_cols`` and friends inspect the
``runs`` table on every ``get_run_records``). Profiling the real-time path showed that
this, not our code, was most of what a run costs: a connection is a PostgreSQL backend
fork plus authentication, and a run writes ~20 events.

These subclasses change only that:

* one pooled engine per process and database URL, shared by every instance the process
  creates (a sensor tick builds a fresh ``DagsterInstance`` each time), created after a
  fork so a Celery prefork child never uses its parent's sockets;
* the "does the schema have X yet" checks remember a *yes* (a schema only gains columns
  through ``dagster instance migrate``, after which processes restart);
* the create-tables-if-missing check runs once per process and URL.

Everything else (tables, queries, migrations) is dagster-postgres's own code.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import sqlalchemy as sa
from .dagster_internals import ConfigurableClassData
from .schema_checks import remember_yes
from carinho_pipelines.store.liveness import check_on_checkout
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

#: connections a process keeps open (pool_size) and may add under load (max_overflow);
#: the daemon's threads (sensors, run queue, monitoring) are the widest user
POOL_SIZE = 2
MAX_OVERFLOW = 10
#: seconds before a pooled connection is replaced (PostgreSQL or a proxy may drop idle ones)
POOL_RECYCLE = 1800

_engines: dict[tuple[int, str], sa.Engine] = {}
_checked: set[tuple[int, type, str]] = set()
_lock = threading.Lock()


def shared_engine(postgres_url: str, token_provider: Any = None) -> sa.Engine:
    """The process's pooled engine for ``postgres_url`` (a new one after a fork)."""
    key = (os.getpid(), postgres_url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_pg_engine(
                postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=POOL_SIZE,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=POOL_RECYCLE,
            )
            # a connection PostgreSQL closed (restart, idle timeout) is replaced, not
            # handed to dagster-postgres, which only retries *opening* one; checked
            # without pool_pre_ping's round trip on every checkout
            _engines[key] = check_on_checkout(engine)
    return engine


def _ensure_tables(stock: type, postgres_url: str, autocreate: bool, token_provider: Any) -> None:
    """dagster-postgres's own create-if-missing check, once per process and URL."""
    if not autocreate:
        return
    key = (os.getpid(), stock, postgres_url)
    if key in _checked:
        return
    storage = stock(postgres_url, True, token_provider=token_provider)
    storage.dispose()
    _checked.add(key)


@classmethod
def _from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict):
    """dagster-postgres's config (``postgres_url`` or ``postgres_db``) → ``cls``."""
    return cls(
        inst_data=inst_data,
        postgres_url=pg_url_from_config(config_value),
        should_autocreate_tables=config_value.get("should_autocreate_tables", True),
        token_provider=get_token_provider_from_config(config_value),
    )


def _pooled(stock: type, checks: tuple[str, ...]) -> type:
    """``stock`` (a dagster-postgres storage class) on the shared pooled engine."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None) -> None:
        _ensure_tables(stock, postgres_url, should_autocreate_tables, token_provider)
        # the stock constructor without its table check (done above), then our engine
        stock.__init__(self, postgres_url, False, inst_data=inst_data, token_provider=token_provider)
        self.should_autocreate_tables = should_autocreate_tables
        self._engine = shared_engine(postgres_url, token_provider)

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "from_config_value": _from_config_value,
        "__module__": __name__,
        "__doc__": f"dagster-postgres's ``{stock.__name__}`` on a pooled, per-process engine.",
    }
    for name in checks:
        namespace[name] = remember_yes(getattr(stock, name))
    return type(f"Pooled{stock.__name__}", (stock,), namespace)


PooledPostgresRunStorage = _pooled(
    PostgresRunStorage,
    ("has_run_stats_index_cols", "has_bulk_actions_selector_cols", "has_backfill_id_column",
     "has_bulk_action_job_name_column", "has_backfill_tags_table"),
)
PooledPostgresEventLogStorage = _pooled(
    PostgresEventLogStorage,
    ("has_table", "has_asset_key_col", "has_asset_key_index_cols", "has_default_pool_limit_col",
     "has_concurrency_limits_table"),
)
PooledPostgresScheduleStorage = _pooled(
    PostgresScheduleStorage, ("has_instigators_table", "has_secondary_index_table")
)


class PooledPostgresStorage(DagsterPostgresStorage):
    """``storage: postgres`` with pooled connections; the same config (``postgres_url``
    or ``postgres_db``)."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None) -> None:
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledPostgresRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = PooledPostgresEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PooledPostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        super(DagsterPostgresStorage, self).__init__()

    from_config_value = _from_config_value

    # the instance ref that run workers and code servers rebuild storage from: ours too
    def _data(self, cls: type) -> ConfigurableClassData | None:
        return ConfigurableClassData(__name__, cls.__name__, self.inst_data.config_yaml) if self.inst_data else None

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return self._data(PooledPostgresEventLogStorage)

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return self._data(PooledPostgresRunStorage)

    @property
    def schedule_storage_data(self) -> ConfigurableClassData | None:
        return self._data(PooledPostgresScheduleStorage)
