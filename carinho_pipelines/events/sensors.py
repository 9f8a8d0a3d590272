"""The dispatch sensor (event store → one run per event) and the WhatsApp outbox flush."""

from __future__ import annotations

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from carinho_pipelines import tags
from carinho_pipelines.queues import NOTIFICATIONS, QUEUES
from relay.store import utcnow

from . import ledger, whatsapp
from .jobs import EVENT_JOBS, run_tags
from .store_resource import EventStoreResource
from carinho_pipelines.resources import ZApiResource

BATCH = 200


@sensor(
    name="event_dispatch_sensor",
    jobs=list(EVENT_JOBS.values()),
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches one run per stored event (run key = event id); delayed events when due.",
)
def event_dispatch_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    """Exactly once: ``run_key`` = event id, deduplicated by Dagster per sensor forever,
    so restarts, a lost dispatch mark or a cursor reset never launch a second run. An
    event is marked dispatched (run id written back) once its run exists — including a
    run submitted by someone else with the same ``carinho/event_id`` tag."""
    store = event_store.store
    due = ledger.due_events(store, utcnow(), BATCH)
    if not due:
        return SkipReason("no events due")
    ids = [str(e["id"]) for e in due]
    existing = {
        run.tags[tags.EVENT_ID]: run.run_id
        for run in context.instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: ids}), limit=len(ids) * 4)
    }
    requests = []
    for event in due:
        run_id = existing.get(str(event["id"]))
        if run_id is not None:
            ledger.mark_dispatched(store, event["id"], run_id)
            continue
        job_def = EVENT_JOBS.get(event["event_type"])
        if job_def is None:  # not catalogued any more: leave it for a person (visible as "received")
            continue
        requests.append(RunRequest(run_key=str(event["id"]), job_name=job_def.name, tags=run_tags(event)))
    cursor = max([int(context.cursor or 0), *(int(r.run_key) for r in requests)])
    return SensorResult(run_requests=requests, cursor=str(cursor))


# -- WhatsApp outbox -------------------------------------------------------------------


@op(required_resource_keys={"event_store", "zapi"})
def send_held_whatsapp_messages(context) -> None:
    """Sends the messages kept while WhatsApp was unavailable, oldest first."""
    whatsapp.forget_status()
    result = whatsapp.flush(context.resources.event_store.store, context.resources.zapi)
    context.log.info(f"outbox flush: {result}")


@job(
    name="flush_whatsapp_outbox",
    executor_def=in_process_executor,
    tags={tags.QUEUE: NOTIFICATIONS, tags.PRIORITY: str(QUEUES[NOTIFICATIONS].priority)},
    description="Send WhatsApp messages held in the outbox during an outage.",
)
def flush_whatsapp_outbox():
    send_held_whatsapp_messages()


@sensor(
    name="whatsapp_outbox_sensor",
    job=flush_whatsapp_outbox,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="When messages are held and the instance is connected again, flush them.",
)
def whatsapp_outbox_sensor(context: SensorEvaluationContext, event_store: EventStoreResource, zapi: ZApiResource):
    pending = ledger.outbox_pending(event_store.store, limit=1)
    if not pending:
        return SkipReason("outbox empty")
    in_flight = context.instance.get_runs(
        filters=RunsFilter(job_name="flush_whatsapp_outbox", statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1
    )
    if in_flight:
        return SkipReason("a flush is already running")
    if not whatsapp.instance_ready(zapi, fresh=True):
        return SkipReason("messages held: WhatsApp still unavailable")
    return RunRequest(run_key=None, tags={tags.DLQ: "open"})
