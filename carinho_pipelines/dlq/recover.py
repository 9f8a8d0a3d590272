"""Recover a window (issue 16): "re-run everything that failed against Financeiro between
14:10 and 15:40" as one operation.

:func:`carinho_pipelines.dlq.items.estimate` answers the dry run (how many, the oldest and the newest); a real
recovery is one run of the ``dlq_recover`` job, visible in the Dagster UI, that
re-executes the matching items from failure, oldest first, at most ``RECOVER_RATE_PER_SECOND`` (kernel/dlq_policy.py)
launches a second, logging its progress and ending with the counts as metadata. It is
cancelled from the UI like any run (the items not reached stay in the DLQ). Each item is
re-executed exactly once even when two recoveries overlap: both go through
:func:`carinho_pipelines.dlq.items.replay`, whose claim row lets only one launch it.
"""

import datetime as dt
import time
from typing import Optional

from dagster import Config, OpExecutionContext, Output, in_process_executor, job, op

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.dlq_policy import RECOVER_JOB
from carinho_pipelines.kernel.dlq_policy import RECOVER_RATE_PER_SECOND as RATE_PER_SECOND
from carinho_pipelines.kernel.queues import QUEUES, RETRY
from carinho_pipelines.store import as_utc, utcnow

from . import items



class RecoverWindow(Config):
    """What to recover (the ``POST /api/dlq/recover`` body) and who asked."""

    since: str
    until: str
    destination: Optional[str] = None  # noqa: UP045 - Dagster's config types need Optional here
    event_type: Optional[str] = None  # noqa: UP045
    error_class: Optional[str] = None  # noqa: UP045
    requested_by: str


@op(required_resource_keys={"event_store"})
def recover_window(context: OpExecutionContext, config: RecoverWindow):
    """Re-execute the window's DLQ items from failure, oldest first, at a bounded rate."""
    since, until = as_utc(dt.datetime.fromisoformat(config.since)), as_utc(dt.datetime.fromisoformat(config.until))
    found = items.matching(context.instance, since, until, destination=config.destination, event_type=config.event_type,
                     error_class=config.error_class)
    context.log.info(f"{len(found)} item(s) failed between {since.isoformat()} and {until.isoformat()}; "
                     f"re-executing oldest first, at most {RATE_PER_SECOND:g}/s")
    store = context.resources.event_store.store
    launched = already = elsewhere = failed = 0
    for n, run in enumerate(found, 1):
        try:
            child, was = items.replay(store, context.instance, run.run_id, config.requested_by, utcnow(),
                                      launched_by=tags.BY_RECOVERY)
        except items.ReplayError as exc:  # another recovery (or a retry) holds this item now
            if "being launched" in str(exc):
                elsewhere += 1
            else:
                failed += 1
            context.log.warning(f"{n}/{len(found)} {run.run_id}: not re-executed ({exc})")
            continue
        already += was
        launched += not was
        context.log.info(f"{n}/{len(found)} {run.run_id} → {child}{' (already re-executed)' if was else ''}")
        if not was:
            time.sleep(1 / RATE_PER_SECOND)  # the rate bound: launches, not work, are paced here
    yield Output(None, metadata={"matched": len(found), "launched": launched, "already_re_executed": already,
                                 "taken_by_another_recovery": elsewhere, "failed_to_launch": failed})


@job(
    name=RECOVER_JOB,
    executor_def=in_process_executor,
    tags={tags.QUEUE: RETRY, tags.PRIORITY: str(QUEUES[RETRY].priority)},
    description="Re-execute the DLQ items of a time window (POST /api/dlq/recover); cancellable from the UI.",
)
def dlq_recover():
    recover_window()
