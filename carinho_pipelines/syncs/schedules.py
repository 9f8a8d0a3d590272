"""The sync jobs and their schedules (America/Sao_Paulo, CONTRACTS §5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    schedule,
)

from .. import settings, tags
from ..dlq import dlq_on_failure
from ..queues import LOW, QUEUES
from . import crm_financeiro, crm_operacao, cuidadores_crm, operacao_financeiro
from .checks import freshness_checks
from .common import run_tags

TIMEZONE = "America/Sao_Paulo"

#: sync name → (module, cron); one source of truth for jobs, schedules and the relay
SYNCS = {
    crm_operacao.NAME: (crm_operacao, "0 * * * *"),
    operacao_financeiro.NAME: (operacao_financeiro, "0 23 * * *"),
    crm_financeiro.NAME: (crm_financeiro, "0 6,18 * * *"),
    cuidadores_crm.NAME: (cuidadores_crm, "0 */4 * * *"),
}

_FRESHNESS_SELECTION = AssetSelection.checks(*freshness_checks)


def sync_job(name: str):  # an unresolved asset job: resources come with the code location
    module, cron = SYNCS[name]
    keys = [s.key for s in getattr(module, name).specs]
    return define_asset_job(
        name=name,
        # the sync's assets and the checks its op evaluates; freshness has its own job
        selection=AssetSelection.assets(*keys) - _FRESHNESS_SELECTION,
        description=f"{module.__doc__.strip().splitlines()[0]} Schedule: `{cron}` ({TIMEZONE}).",
        tags=run_tags(name),
        executor_def=in_process_executor,
        hooks={dlq_on_failure},
    )


jobs = {name: sync_job(name) for name in SYNCS}


def sync_destinations(name: str) -> list[str]:
    """The systems a sync calls (its source and where it writes): the DLQ re-drive
    waits until all of them are healthy."""
    spec = SYNCS[name][0].SPEC
    keys = [spec.written_key, *([spec.confirmed_key] if spec.confirmed_key else [])]
    return sorted({spec.source_system, *(k.path[0] for k in keys)})

freshness_job = define_asset_job(
    name="sync_freshness",
    selection=_FRESHNESS_SELECTION,
    description="Checks that each sync's last successful run is recent enough.",
    tags={tags.QUEUE: LOW, tags.PRIORITY: str(QUEUES[LOW].priority)},
    executor_def=in_process_executor,
)


def _schedule(name: str) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=f"{name}_schedule",
        job=jobs[name],
        cron_schedule=SYNCS[name][1],
        execution_timezone=TIMEZONE,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Runs `{name}` at `{SYNCS[name][1]}` ({TIMEZONE}).",
        tags={tags.LAUNCHED_BY: tags.BY_SCHEDULE},
    )


@schedule(
    name=f"{operacao_financeiro.NAME}_schedule",
    job=jobs[operacao_financeiro.NAME],
    cron_schedule=SYNCS[operacao_financeiro.NAME][1],
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Invoices today's completed services at 23:00, and re-runs yesterday's partition so a "
    "service completed after 23:00 is invoiced too (idempotent: already-billed services are skipped).",
)
def operacao_financeiro_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    at = context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)
    today = at.astimezone(ZoneInfo(TIMEZONE)).date()
    for day in (today - dt.timedelta(days=1), today):
        if day < settings.go_live_date():  # the first day has no yesterday
            continue
        key = day.isoformat()
        yield RunRequest(run_key=f"{key}@{at.isoformat()}", partition_key=key,
                         tags={tags.LAUNCHED_BY: tags.BY_SCHEDULE})


freshness_schedule = ScheduleDefinition(
    name="sync_freshness_schedule",
    job=freshness_job,
    cron_schedule="30 * * * *",
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Evaluates the syncs' freshness checks hourly (the 07:30 checklist reads them).",
    tags={tags.LAUNCHED_BY: tags.BY_SCHEDULE},
)

schedules = [
    _schedule(crm_operacao.NAME),
    operacao_financeiro_schedule,
    _schedule(crm_financeiro.NAME),
    _schedule(cuidadores_crm.NAME),
    freshness_schedule,
]
