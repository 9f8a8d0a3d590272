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

from carinho_pipelines.kernel import tags
from carinho_pipelines.dlq import dlq_on_failure
from carinho_pipelines.kernel.queues import NOTIFICATIONS, QUEUES
from carinho_pipelines.store import utcnow
from carinho_pipelines.store.claims import claim_events

from . import ledger, whatsapp
from .jobs import EVENT_JOBS, run_tags
from carinho_pipelines.resources.event_store import EventStoreResource
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
    """Exactly once: the sensor claims an event before requesting its run (the claim the
    relay takes for a direct submission, so the two never both launch), and ``run_key``
    = event id, deduplicated by Dagster per sensor forever, so restarts, a lost dispatch
    mark or a cursor reset never launch a second run. An event is marked dispatched (run
    id written back) once its run exists — including a run submitted by the relay."""
    store = event_store.store
    now = utcnow()
    due = ledger.due_events(store, now, BATCH)
    launching = ledger.claimed_undispatched(store, now, BATCH)
    if not due and not launching:
        return SkipReason("no events due")
    ids = [str(e["id"]) for e in due] + [str(i) for i in launching]
    existing = {
        run.tags[tags.EVENT_ID]: run.run_id
        for run in context.instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: ids}), limit=len(ids) * 4)
    }
    for event_id in launching:
        if str(event_id) in existing:
            ledger.mark_dispatched(store, event_id, existing[str(event_id)])
    to_launch = []
    for event in due:
        run_id = existing.get(str(event["id"]))
        if run_id is not None:
            ledger.mark_dispatched(store, event["id"], run_id)
        elif event["event_type"] in EVENT_JOBS:  # not catalogued any more: left for a person
            to_launch.append(event)
    claimed = claim_events(store.engine, [e["id"] for e in to_launch], now, take_over_stale=True)
    requests = [
        RunRequest(run_key=str(event["id"]), job_name=EVENT_JOBS[event["event_type"]].name, tags=run_tags(event))
        for event in to_launch
        if event["id"] in claimed
    ]
    if not requests:
        return SkipReason("nothing to launch: due events are dispatched or being submitted")
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
    hooks={dlq_on_failure},
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
    return RunRequest(run_key=None, tags={tags.LAUNCHED_BY: tags.BY_OUTBOX_SENSOR})
