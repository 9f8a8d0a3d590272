"""The dispatch sensor: event store → one run per event."""

from __future__ import annotations

import datetime as dt

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from carinho_pipelines.destinations import limits, pauses
from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.catalogue import CATALOGUE
from carinho_pipelines.kernel.queues import HIGH, QUEUES
from carinho_pipelines.kernel.settings import current
from carinho_pipelines.platform import broker_queues
from carinho_pipelines.platform.coordinator import fail_unlaunched_runs
from carinho_pipelines.platform.dagster_internals import IN_PROGRESS_RUN_STATUSES
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.claims import claim_events

from . import ledger
from .jobs import EVENT_JOBS, run_tags
from carinho_pipelines.resources.event_store import EventStoreResource

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
    return dispatch_tick(context, event_store.store, utcnow())


def dispatch_tick(context: SensorEvaluationContext, store: EventStore, now: dt.datetime):
    """One tick of :func:`event_dispatch_sensor` at ``now`` (the sensor passes the
    clock; a test passes any instant)."""
    stranded = fail_unlaunched_runs(context.instance, now)
    if stranded:
        context.log.warning(f"failed {len(stranded)} run(s) whose launch was interrupted, for the DLQ re-drive: "
                            f"{', '.join(stranded)}")
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
    to_launch = _yield_to_high(to_launch, now)
    claimed = claim_events(store.engine, [e["id"] for e in to_launch], now, take_over_stale=True)
    requests = [
        RunRequest(run_key=str(event["id"]), job_name=EVENT_JOBS[event["event_type"]].name, tags=run_tags(event))
        for event in to_launch
        if event["id"] in claimed
    ]
    if not requests:
        return SkipReason("nothing to launch: due events are dispatched, being submitted, or wait for integrations-high")
    cursor = max([int(context.cursor or 0), *(int(r.run_key) for r in requests)])
    return SensorResult(run_requests=requests, cursor=str(cursor))


def _yield_to_high(due: list[dict], now: dt.datetime) -> list[dict]:
    """While integrations-high has runs waiting for a worker, launch only its events, and
    those of other queues due for longer than the wait the relay and the workers allow
    (strict priority, as relay/submit.py and platform/celery_app.yield_to_high)."""
    if all(e["queue"] == HIGH for e in due) or not broker_queues.high_backlog(current().celery_broker_url):
        return due
    patience = dt.timedelta(seconds=broker_queues.YIELD_TO_HIGH_MAX_SECONDS)
    return [e for e in due if e["queue"] == HIGH or now - as_utc(e["available_at"]) > patience]


@sensor(
    name="paused_actions_sensor",
    jobs=list(EVENT_JOBS.values()),
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs each event whose actions waited, once their destination is resumed or has free slots.",
)
def paused_actions_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    """One run per event with an action that waited for its destination: paused by ops
    (and now resumed, or its pause over), or busy (all its concurrency slots taken, with
    a line: destinations/slots.py) and now with a free slot. The ledger lets the new run
    call only what waited. ``run_key`` = the event and when it last waited, so a new
    wait of the same event is a new run, and a tick that sees the same waiting rows again
    launches nothing."""
    return resume_tick(context, event_store.store)


def resume_tick(context: SensorEvaluationContext, store: EventStore):
    """One tick of :func:`paused_actions_sensor`."""
    now = utcnow()
    paused_now = pauses.active(store, now)
    by_event: dict[int, list[dict]] = {}
    for row in ledger.paused_actions(store, BATCH):
        by_event.setdefault(row["event_id"], []).append(row)
    if not by_event:
        return SkipReason("no action waits")
    # a busy destination gets at most as many new runs per tick as it has free slots,
    # plus one round (those wait for their slot in the worker), the most urgent first
    busy = any((r["result"] or {}).get("busy") for rows in by_event.values() for r in rows)
    room = _room(context.instance) if busy else {}
    # never beside the run that left the action waiting: it may still be running others
    waiting_runs = sorted({r["run_id"] for rows in by_event.values() for r in rows if r["run_id"]})
    running = {run.run_id for run in context.instance.get_runs(
        filters=RunsFilter(run_ids=waiting_runs, statuses=list(IN_PROGRESS_RUN_STATUSES)))} if waiting_runs else set()
    requests = []
    for event_id, rows in sorted(by_event.items(), key=lambda item: (-QUEUES[item[1][0]["queue"]].priority
                                                                     if item[1][0]["queue"] in QUEUES else 0, item[0])):
        spec = CATALOGUE.get(rows[0]["event_type"])
        if spec is None or rows[0]["event_type"] not in EVENT_JOBS or any(r["run_id"] in running for r in rows):
            continue
        destination = {a.name: a.destination for a in spec.actions}
        # an action that waited for its own destination, which can take it now (an
        # action that waited for another one follows it)
        ready = [destination.get(r["action"]) for r in rows if _ready(r, destination.get(r["action"]), paused_now, room)]
        if not ready:
            continue
        for name in ready:
            if name in room:
                room[name] -= 1
        event = {"id": event_id, "event_type": rows[0]["event_type"], "source": rows[0]["source"],
                 "queue": rows[0]["queue"]}
        last = max(as_utc(r["updated_at"]) for r in rows).isoformat()
        requests.append(RunRequest(run_key=f"{event_id}:resumed:{last}", job_name=EVENT_JOBS[event["event_type"]].name,
                                   tags=tags.event_run_tags(event, tags.BY_PAUSE_SENSOR)))
    if not requests:
        waiting = sum(len(r) for r in by_event.values())
        return SkipReason(f"{waiting} action(s) wait for {', '.join(sorted(paused_now)) or 'free slots'}")
    return SensorResult(run_requests=requests)


def _ready(row: dict, destination: str | None, paused_now: dict, room: dict[str, int]) -> bool:
    result = row["result"] or {}
    if destination is None or destination in paused_now:
        return False
    if result.get("reason") is not None:  # its pause is over
        return True
    return bool(result.get("busy")) and room.get(destination, 1) > 0


def _room(instance) -> dict[str, int]:
    """Destination → runs a busy destination may be given this tick."""
    room = {}
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return room
    for destination in limits.LIMITS:
        info = storage.get_concurrency_info(limits.pool_of(destination))
        room[destination] = max(0, info.slot_count - info.active_slot_count - info.pending_step_count) + info.slot_count
    return room
