"""Fixtures for the sync tests: the sandbox over HTTP, a migrated PostgreSQL hub database
with the sync ledger, the hub's environment pointed at both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import dagster
import pytest
import sqlalchemy as sa

from carinho_sandbox import Sandbox
from carinho_pipelines.syncs import SyncLedger
from carinho_pipelines.syncs.ledger import ledger_for
from carinho_pipelines.store.tables import sync_ledger

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
#: small pages, so every feed is read over several pages
PAGE_SIZE = 2
#: fast retries: the tests check behaviour, not the backoff's length
FAST = {"backoff_seconds": 0.0}


def today() -> dt.date:
    return dt.datetime.now(SAO_PAULO).date()


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(base_port=0, page_size=PAGE_SIZE).start()
    yield sb
    sb.stop()


@pytest.fixture()
def sb(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture(scope="session")
def hub_db(pg_database) -> str:
    from carinho_pipelines.store.migrate import upgrade

    url = pg_database("carinho_sync")
    upgrade(url)
    return url


@pytest.fixture()
def ledger(hub_db: str) -> SyncLedger:
    found = ledger_for(hub_db)
    with found.engine.begin() as conn:
        conn.execute(sa.delete(sync_ledger))
    return found


@pytest.fixture()
def hub(sb: Sandbox, hub_db: str, ledger: SyncLedger, monkeypatch: pytest.MonkeyPatch) -> "Hub":
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CARINHO_DATABASE_URL", hub_db)
    return Hub(sb, ledger)


class Hub:
    """The syncs' code location (``tests.syncs.location``) against the sandbox."""

    def __init__(self, sb: Sandbox, ledger: SyncLedger) -> None:
        from tests.syncs.location import definitions

        self.sb = sb
        self.ledger = ledger
        self.defs = definitions()
        self.instance = dagster.DagsterInstance.ephemeral()

    def run(self, sync: str, partition: str | dt.date | None = None, **config: Any) -> dagster.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(sync)
        op = job.graph.node_names()[0]
        return job.execute_in_process(
            instance=self.instance,
            partition_key=partition.isoformat() if isinstance(partition, dt.date) else partition,
            run_config={"ops": {op: {"config": {**FAST, **config}}}},
            raise_on_error=False,
        )


def materializations(result: dagster.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Asset key → its metadata values, from a run."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def checks(result: dagster.ExecuteInProcessResult) -> dict[str, Any]:
    """Check name → its evaluation, from a run."""
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def writes(sb: Sandbox, system: str, method: str | None = None, prefix: str = "") -> list[dict[str, Any]]:
    return [c for c in sb.calls(system) if c["method"] != "GET" and (method is None or c["method"] == method)
            and c["path"].startswith(prefix) and not c.get("fault")]


def service(sid: int, client_id: int | None, day: dt.date, hours: float = 4, rate: float = 30.0,
            extras: list[dict[str, Any]] | None = None, billed: bool = False, **extra: Any) -> dict[str, Any]:
    extras = extras or []
    total = round(hours * rate + sum(e["value"] for e in extras), 2)
    return {"id": sid, "client_id": client_id, "service_type": "cuidador_idoso", "hours": hours,
            "hourly_rate": rate, "total": total, "extras": extras, "billed": billed,
            "completed_at": dt.datetime.combine(day, dt.time(15), SAO_PAULO).isoformat(), **extra}
