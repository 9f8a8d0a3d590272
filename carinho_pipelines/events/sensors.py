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

from carinho_pipelines.destinations import pauses
from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.catalogue import CATALOGUE
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


@sensor(
    name="paused_actions_sensor",
    jobs=list(EVENT_JOBS.values()),
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="When a paused destination is resumed (or its pause ends), runs each event whose actions waited.",
)
def paused_actions_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    """One run per event with an action that waited for a destination no longer paused;
    the ledger lets it call only what waited. ``run_key`` = the event and when it last
    waited, so a new pause of the same event is a new run, and a tick that sees the same
    waiting rows again launches nothing."""
    store = event_store.store
    now = utcnow()
    paused_now = pauses.active(store, now)
    by_event: dict[int, list[dict]] = {}
    for row in ledger.paused_actions(store, BATCH):
        by_event.setdefault(row["event_id"], []).append(row)
    requests = []
    for event_id, rows in by_event.items():
        spec = CATALOGUE.get(rows[0]["event_type"])
        if spec is None or rows[0]["event_type"] not in EVENT_JOBS:
            continue
        destination = {a.name: a.destination for a in spec.actions}
        # an action that waited for its own destination, which is no longer paused (an
        # action that waited for another one follows it)
        if not any((r["result"] or {}).get("reason") is not None and destination.get(r["action"]) not in paused_now
                   for r in rows):
            continue
        event = {"id": event_id, "event_type": rows[0]["event_type"], "source": rows[0]["source"],
                 "queue": rows[0]["queue"]}
        last = max(as_utc(r["updated_at"]) for r in rows).isoformat()
        requests.append(RunRequest(run_key=f"{event_id}:resumed:{last}", job_name=EVENT_JOBS[event["event_type"]].name,
                                   tags=tags.event_run_tags(event, tags.BY_PAUSE_SENSOR)))
    if not requests:
        waiting = sum(len(r) for r in by_event.values())
        return SkipReason(f"{waiting} action(s) wait for {', '.join(sorted(paused_now)) or 'nothing'}" if waiting
                          else "no action waits")
    return SensorResult(run_requests=requests)
