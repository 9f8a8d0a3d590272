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

from carinho_pipelines.kernel import settings, tags
from carinho_pipelines.kernel.queues import LOW, QUEUES
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY, TIMEZONE

from ..dlq.hooks import dlq_on_failure
from . import crm_financeiro, crm_operacao, cuidadores_crm, operacao_financeiro
from .checks import freshness_checks
from .common import run_tags

#: sync name → (module, cron), in the registry's order (kernel/sync_registry.py holds
#: the schedules; the modules hold the assets)
_MODULES = {m.NAME: m for m in (crm_operacao, operacao_financeiro, crm_financeiro, cuidadores_crm)}
SYNCS = {name: (_MODULES[name], sync.cron) for name, sync in SYNC_REGISTRY.items()}

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
