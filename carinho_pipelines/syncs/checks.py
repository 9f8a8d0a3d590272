"""Freshness: each sync's last successful run is recent enough.

"Did last night's syncs run?" becomes a glance at these checks in the UI. They read
the Dagster instance (runs tagged ``carinho/sync=<name>``), so they are evaluated by
their own small job on a schedule, not by the syncs themselves (a sync that never
runs could never report that it is stale).
"""


import datetime as dt
from dataclasses import dataclass

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    DagsterRunStatus,
    RunsFilter,
    asset_check,
)

from carinho_pipelines.kernel import tags as run_tags_module

from . import crm_financeiro, crm_operacao, cuidadores_crm, operacao_financeiro

CHECK_NAME = "last_successful_run_recent"


@dataclass(frozen=True)
class Freshness:
    sync: str
    asset: AssetKey
    max_age: dt.timedelta
    cadence: str


#: the cadence plus slack (a run can wait in the queue and take a while)
FRESHNESS: tuple[Freshness, ...] = (
    Freshness(crm_operacao.NAME, crm_operacao.TARGET_KEY, dt.timedelta(hours=2), "hourly"),
    Freshness(operacao_financeiro.NAME, operacao_financeiro.INVOICES_KEY, dt.timedelta(hours=26), "daily at 23:00"),
    Freshness(crm_financeiro.NAME, crm_financeiro.TARGET_KEY, dt.timedelta(hours=13), "06:00 and 18:00"),
    Freshness(cuidadores_crm.NAME, cuidadores_crm.TARGET_KEY, dt.timedelta(hours=5), "every 4 h"),
)


def last_runs(instance, sync: str) -> tuple[object | None, object | None]:
    """``(last successful run record, last run record)`` of a sync."""
    tags = {run_tags_module.SYNC: sync}
    success = instance.get_run_records(RunsFilter(tags=tags, statuses=[DagsterRunStatus.SUCCESS]), limit=1)
    latest = instance.get_run_records(RunsFilter(tags=tags), limit=1)
    return (success[0] if success else None), (latest[0] if latest else None)


def _ended(record) -> dt.datetime | None:
    if record is None:
        return None
    stamp = record.end_time or record.start_time
    if stamp is not None:
        return dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
    return record.update_timestamp.astimezone(dt.timezone.utc) if record.update_timestamp else None


def freshness_check(spec: Freshness) -> AssetChecksDefinition:
    hours = spec.max_age.total_seconds() / 3600

    @asset_check(
        asset=spec.asset,
        name=CHECK_NAME,
        description=f"The last successful run of `{spec.sync}` ({spec.cadence}) finished less than {hours:g} h ago.",
        blocking=False,
    )
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        success, latest = last_runs(context.instance, spec.sync)
        now = dt.datetime.now(dt.timezone.utc)
        ended = _ended(success)
        age_h = round((now - ended).total_seconds() / 3600, 2) if ended else None
        return AssetCheckResult(
            passed=ended is not None and now - ended <= spec.max_age,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "sync": spec.sync,
                "last_success_at": ended.isoformat() if ended else "never",
                "hours_since_success": age_h if age_h is not None else -1,
                "max_hours": hours,
                "last_run_id": latest.dagster_run.run_id if latest else "",
                "last_run_status": latest.dagster_run.status.value if latest else "none",
            },
        )

    return _check


freshness_checks: list[AssetChecksDefinition] = [freshness_check(f) for f in FRESHNESS]
