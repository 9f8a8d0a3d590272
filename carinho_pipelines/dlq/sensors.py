"""DLQ automation: annotate failed runs, and re-drive the ones that failed only
because a destination was unavailable once it is healthy again (the seed's retry queue)."""

from __future__ import annotations

import datetime as dt

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from carinho_pipelines.destinations import breakers
from carinho_pipelines import dlq
from carinho_pipelines.dlq.items import MAX_AUTO_REDRIVES, item_destinations, redrive_interval_seconds
from carinho_pipelines.kernel import tags
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.store import utcnow

#: re-executions launched per evaluation (every 30 s): a recovered destination is
#: caught up in order, without a storm
REDRIVE_PER_TICK = 5
AUTO = "auto-redrive"
#: how often dlq_failure_sensor looks at failed runs. (The tags a Dagster-UI re-execution
#: copies from its failed parent come off in the re-drive sensor's tick once it succeeds:
#: a run status sensor for every success cost ~12 ticks a minute idle and, processing 5
#: runs per tick, fell behind at 10x.)
STATE_SENSOR_INTERVAL_SECONDS = 5


@run_failure_sensor(name="dlq_failure_sensor", default_status=DefaultSensorStatus.RUNNING,
                    minimum_interval_seconds=STATE_SENSOR_INTERVAL_SECONDS,
                    description="Puts each failed event, sync or outbox run in the DLQ (carinho/dlq=open) with its "
                    "error class, failed ops and destinations.")
def dlq_failure_sensor(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    if not dlq.in_scope(run):
        return
    failure = dlq.annotate(context.instance, context.instance.get_run_by_id(run.run_id) or run)
    context.log.info(f"DLQ: {run.run_id} {failure.error_class} {failure.failed_ops}")


@sensor(name="dlq_redrive_sensor", minimum_interval_seconds=redrive_interval_seconds(), default_status=DefaultSensorStatus.RUNNING,
        description="Re-executes from failure the DLQ items of class 'unavailable' once their destination is healthy.")
def dlq_redrive_sensor(context: SensorEvaluationContext, event_store: EventStoreResource):
    store = event_store.store
    instance = context.instance
    now = utcnow()
    reconciled = dlq.reconcile(instance, store)
    candidates = dlq.failed_runs(instance, error_class="unavailable", limit=500)
    launched: list[tuple[str, str]] = []
    waiting: dict[str, dt.datetime | None] = {}
    exhausted = waiting_items = 0
    probing: set[str] = set()
    problem = None
    for run in reversed(candidates):  # oldest first
        if len(launched) >= REDRIVE_PER_TICK:
            break
        if len(dlq.run_group(instance, run)) > MAX_AUTO_REDRIVES:
            exhausted += 1
            continue
        destinations = item_destinations(instance, run)
        states = breakers.states(store)
        closed_to = [d for d in destinations if not breakers.healthy(store, d, now) or d in probing]
        if closed_to:
            waiting_items += 1
            for d in closed_to:
                waiting.setdefault(d, breakers.probe_at(store, d))
            continue
        # while a breaker is not closed, one re-execution is its probe; the rest wait
        probing |= {d for d in destinations if states.get(d, breakers.CLOSED) != breakers.CLOSED}
        try:
            child, already = dlq.replay(store, instance, run.run_id, AUTO, now, launched_by=tags.BY_AUTO_REDRIVE)
        except dlq.ReplayError as exc:
            if exc.refused:  # this item's launch failed: the next ones may go
                problem = f"could not re-execute {run.run_id[:8]}: {exc}"
                continue
            problem = f"cannot launch re-executions now: {exc}"
            break
        if not already:
            launched.append((run.run_id, child))
    return SkipReason(summary(launched, waiting_items, waiting, exhausted, reconciled, len(candidates), problem))


def summary(launched: list[tuple[str, str]], waiting_items: int, waiting: dict[str, dt.datetime | None], exhausted: int,
            reconciled: list[str], candidates: int, problem: str | None = None) -> str:
    """What a tick did, in the words the RUNBOOK uses (the UI shows it on the tick)."""
    parts = [f"re-drove {len(launched)}" + (": " + ", ".join(f"{p[:8]} → {c[:8]}" for p, c in launched) if launched else "")]
    shown = ", ".join(f"{d} (breaker open, next probe from {t:%H:%M:%S} UTC)" if t else d
                      for d, t in sorted(waiting.items()))
    parts.append(f"{waiting_items} waiting for their destination" + (f": {shown}" if shown else ""))
    parts.append(f"{exhausted} past {MAX_AUTO_REDRIVES} automatic tries")
    parts.append(f"{len(reconciled)} re-executed from the UI")
    if problem:
        parts.append(problem)
    if not candidates and not reconciled and not problem:
        return "nothing to re-drive: no open DLQ item of class unavailable"
    return "; ".join(parts)
