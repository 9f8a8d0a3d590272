"""Retention (LGPD, CONTRACTS §1): full payloads live only in the event store, for a
limited time. A nightly job:

- blanks event payloads older than ``CARINHO_RETENTION_DAYS`` (30), keeping the row's
  metadata (type, source, queue, times, run id) and recording ``payload_purged_at``;
  events not yet due are kept;
- blanks phone numbers and message bodies of WhatsApp outbox rows already sent or
  failed, older than the same limit (held messages are kept: they are still to be sent);
- deletes Dagster runs older than ``CARINHO_RUN_RETENTION_DAYS`` (90) — finished runs
  only, never an open DLQ item nor any run of a group that has one;
- purges sensor/schedule ticks: skipped ones older than
  ``CARINHO_TICK_RETENTION_SKIPPED_DAYS`` (7), others older than
  ``CARINHO_TICK_RETENTION_DAYS`` (30).

Work is done in small batches (the PHP module's single bulk delete failed), and the run
reports what it removed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    MetadataValue,
    Output,
    RunsFilter,
    ScheduleDefinition,
    in_process_executor,
    job,
    op,
)

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.privacy import mask_phone
from carinho_pipelines.kernel.queues import LOW, QUEUES
from carinho_pipelines.kernel.settings import env
from carinho_pipelines.store import EventStore, utcnow
from carinho_pipelines.store.tables import events, whatsapp_outbox

BATCH = 500
#: at most this many runs deleted per job run (the rest next night)
MAX_RUNS_PER_PASS = 20000


def _days(name: str, default: int) -> int:
    return int(env(name, str(default)) or default)


def retention_days() -> int:
    return _days("CARINHO_RETENTION_DAYS", 30)


def run_retention_days() -> int:
    return _days("CARINHO_RUN_RETENTION_DAYS", 90)


def purge_payloads(store: EventStore, now: dt.datetime | None = None, days: int | None = None) -> dict[str, int]:
    """Blank payloads received and due before the cutoff; returns counts."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=retention_days() if days is None else days)
    purged = 0
    while True:
        with store.engine.begin() as conn:
            ids = conn.execute(
                sa.select(events.c.id)
                .where(events.c.received_at < cutoff, events.c.available_at < cutoff,
                       events.c.payload_purged_at.is_(None))
                .order_by(events.c.id).limit(BATCH)
            ).scalars().all()
            if not ids:
                break
            conn.execute(events.update().where(events.c.id.in_(ids)).values(payload=None, payload_purged_at=now))
        purged += len(ids)
    outbox = 0
    while True:
        with store.engine.begin() as conn:
            rows = conn.execute(
                sa.select(whatsapp_outbox.c.id, whatsapp_outbox.c.phone)
                .where(whatsapp_outbox.c.created_at < cutoff, whatsapp_outbox.c.status.in_(("sent", "failed")),
                       sa.not_(whatsapp_outbox.c.phone.like("%****%")))
                .order_by(whatsapp_outbox.c.id).limit(BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                conn.execute(whatsapp_outbox.update().where(whatsapp_outbox.c.id == row.id)
                             .values(phone=(mask_phone(row.phone) or "")[:32], body={}, last_error=None))
        outbox += len(rows)
    return {"event_payloads": purged, "outbox_messages": outbox, "cutoff_days": (now - cutoff).days}


def purge_runs(instance: Any, now: dt.datetime | None = None, days: int | None = None) -> dict[str, Any]:
    """Delete finished runs last updated before the cutoff, except open DLQ items and
    the other runs of their groups (their history is what a person reviews)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=run_retention_days() if days is None else days)
    open_dlq = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={tags.DLQ: "open"}))
    protected_groups = {run.root_run_id or run.run_id for run in open_dlq}
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    candidates: list[str] = []
    kept = 0
    cursor = None
    while len(candidates) < MAX_RUNS_PER_PASS:  # collect first: deleting while paging would move the cursor
        records = instance.get_run_records(filters=RunsFilter(statuses=finished, updated_before=cutoff),
                                           limit=BATCH, cursor=cursor)
        if not records:
            break
        cursor = records[-1].dagster_run.run_id
        for record in records:
            run = record.dagster_run
            open_item = run.status == DagsterRunStatus.FAILURE and run.tags.get(tags.DLQ) not in ("archived", "replayed")
            if open_item or (run.root_run_id or run.run_id) in protected_groups:
                kept += 1
            else:
                candidates.append(run.run_id)
    for run_id in candidates:
        instance.delete_run(run_id)
    deleted = candidates
    return {"runs_deleted": len(deleted), "runs_kept_failed": kept, "cutoff_days": (now - cutoff).days}


def purge_ticks(instance: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    from carinho_pipelines.platform.dagster_internals import InstigatorType, TickStatus

    now = now or utcnow()
    skipped_days = _days("CARINHO_TICK_RETENTION_SKIPPED_DAYS", 7)
    other_days = _days("CARINHO_TICK_RETENTION_DAYS", 30)
    instigators = 0
    if instance.schedule_storage is None:  # an ephemeral instance keeps no ticks
        return {"instigators": 0, "skipped_after_days": skipped_days, "others_after_days": other_days}
    for state in instance.all_instigator_state():
        if state.instigator_type not in (InstigatorType.SENSOR, InstigatorType.SCHEDULE):
            continue
        origin, selector = state.instigator_origin_id, state.selector_id
        instance.purge_ticks(origin, selector, (now - dt.timedelta(days=skipped_days)).timestamp(), [TickStatus.SKIPPED])
        instance.purge_ticks(origin, selector, (now - dt.timedelta(days=other_days)).timestamp(),
                             [TickStatus.SUCCESS, TickStatus.FAILURE])
        instigators += 1
    return {"instigators": instigators, "skipped_after_days": skipped_days, "others_after_days": other_days}


@op(required_resource_keys={"event_store"})
def purge_event_payloads(context):
    """Event payloads and WhatsApp outbox contents past the retention limit."""
    result = purge_payloads(context.resources.event_store.store)
    context.log.info(f"retention: {result}")
    yield Output(None, metadata={k: MetadataValue.int(v) for k, v in result.items()})


@op
def purge_dagster_history(context):
    """Old finished runs (never an open DLQ item) and old sensor/schedule ticks."""
    runs = purge_runs(context.instance)
    ticks = purge_ticks(context.instance)
    context.log.info(f"retention: {runs} {ticks}")
    yield Output(None, metadata={**{k: MetadataValue.int(v) for k, v in runs.items()},
                                 "ticks": MetadataValue.json(ticks)})


@job(
    name="retention_job",
    executor_def=in_process_executor,
    tags={tags.QUEUE: LOW, tags.PRIORITY: str(QUEUES[LOW].priority)},
    description="LGPD retention: blank old event payloads (metadata kept); delete old runs and ticks.",
)
def retention_job():
    purge_event_payloads()
    purge_dagster_history()


retention_schedule = ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="15 3 * * *",
    execution_timezone="America/Sao_Paulo",
    default_status=DefaultScheduleStatus.RUNNING,
    description="03:15 São Paulo, the quietest hour.",
)
