"""DLQ automation: annotate failed runs, and re-drive the ones that failed only
because a destination was unavailable once it is healthy again (the seed's retry queue)."""

from __future__ import annotations

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from carinho_pipelines import breakers, dlq, tags
from carinho_pipelines.syncs.schedules import SYNCS, sync_destinations
from carinho_pipelines.events.store_resource import EventStoreResource
from carinho_pipelines.settings import env
from relay.store import utcnow

#: re-executions launched per evaluation (every 30 s): a recovered destination is
#: caught up in order, without a storm
REDRIVE_PER_TICK = 5
#: automatic re-executions of one item at most; after that a person decides
MAX_AUTO_REDRIVES = 5
AUTO = "auto-redrive"
REDRIVE_INTERVAL_SECONDS = int(env("CARINHO_REDRIVE_INTERVAL_SECONDS", "30") or 30)


@run_failure_sensor(name="dlq_failure_sensor", default_status=DefaultSensorStatus.RUNNING,
                    description="Tags each failed run with its error class, failed ops and destinations.")
def dlq_failure_sensor(context: RunFailureSensorContext) -> None:
    failure = dlq.annotate(context.instance, context.dagster_run)
    context.log.info(f"DLQ: {context.dagster_run.run_id} {failure.error_class} {failure.failed_ops}")


@sensor(name="dlq_redrive_sensor", minimum_interval_seconds=REDRIVE_INTERVAL_SECONDS, default_status=DefaultSensorStatus.RUNNING,
        description="Re-executes from failure the DLQ items of class 'unavailable' once their destination is healthy.")
def dlq_redrive_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    store = event_store.store
    instance = context.instance
    now = utcnow()
    reconciled = dlq.reconcile(instance)
    candidates = dlq.failed_runs(instance, error_class="unavailable", limit=500)
    launched: list[str] = []
    waiting = exhausted = 0
    probing: set[str] = set()
    for run in reversed(candidates):  # oldest first
        if len(launched) >= REDRIVE_PER_TICK:
            break
        if len(dlq.run_group(instance, run)) > MAX_AUTO_REDRIVES:
            exhausted += 1
            continue
        tagged = run.tags.get(dlq.DESTINATIONS_TAG)
        destinations = [d for d in (tagged.split(",") if tagged else dlq.failure_of(instance, run.run_id).destinations) if d]
        sync = run.tags.get(tags.SYNC)
        if sync in SYNCS:  # a sync records failed items, not destinations: wait for all its systems
            destinations = sorted({*destinations, *sync_destinations(sync)})
        states = breakers.states(store)
        if any(not breakers.healthy(store, d, now) for d in destinations) or probing & set(destinations):
            waiting += 1
            continue
        # while a breaker is not closed, one re-execution is its probe; the rest wait
        probing |= {d for d in destinations if states.get(d, breakers.CLOSED) != breakers.CLOSED}
        try:
            child, already = dlq.replay(store, instance, run.run_id, AUTO, now)
        except dlq.ReplayError as exc:
            return SkipReason(f"cannot launch re-executions now: {exc}")
        if not already:
            launched.append(child)
    summary = (f"re-drove {len(launched)}; {waiting} waiting for their destination; "
               f"{exhausted} past {MAX_AUTO_REDRIVES} automatic tries; {len(reconciled)} re-executed from the UI")
    return SkipReason(summary)
