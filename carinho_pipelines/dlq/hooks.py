"""The DLQ's failure hook, on every event, sync and outbox job: a failed run gets its DLQ
tag and readable failure tags at once (the sensors are the safety net)."""

from __future__ import annotations

from dagster import HookContext, failure_hook

from .items import annotate, in_scope


@failure_hook(name="dlq_on_failure")
def dlq_on_failure(context: HookContext) -> None:
    """The run's DLQ tag, set the moment one of its ops fails for good (so the UI
    filter and ``GET /api/dlq`` list it without waiting for a sensor tick)."""
    run = context.instance.get_run_by_id(context.run_id)
    if run is not None and in_scope(run):
        annotate(context.instance, run)
