"""The run coordinator: event runs on warm workers skip Dagster's run queue (issue 17).

With the Celery run launcher every carinho queue already has its own Celery queue and its
own worker processes (``carinho worker``), so the run queue in front of them only adds
the wait for its next dequeue pass: half of an event's latency at 1× and 10×
(benchmarks/README.md, "Latency floor"). So an *event* run (``carinho/event_id``, not a
sync) is launched as it is submitted, by whoever submits it (the webserver for the
relay's GraphQL launch, the daemon for a sensor's run request): the launcher sends it to
its queue's Celery queue, with its ``dagster/priority`` as the Celery priority, and the
worker group of that queue runs it. What keeps one queue from starving another is then
the worker processes each group has (``WORKER_CONCURRENCY``), not a run-queue limit.

Everything else goes through the run queue as before (``QueuedRunCoordinator``): syncs
(``carinho/queue`` integrations-low, and never two runs of one sync), window recoveries
and jobs started from the UI's launchpad, with the limits in ``dagster.yaml``. Without a
broker (``CARINHO_RUN_LAUNCHER=process``, a process per run) every run is queued, as the
per-queue limits are then what keeps the machine from thrashing.

Both paths first make the run the owner of its event (``store.claims.own_event``): an
event's first run (launched by the relay, the dispatch sensor or another event's run)
that finds its event already owned by another run is a second submission of the same
event (the relay's launch timed out while the webserver, slowed by a PostgreSQL restart,
still created the run; the sensor then dispatched the event again). It is cancelled
before it starts, with the owner named, so no event is processed twice.

A run is created ``NOT_STARTED`` and moved on (to ``QUEUED`` or ``STARTING``) by the same
request that created it. When that request dies in between (the webserver killed, its
database restarting under it), nothing would ever move the run: run monitoring watches
starting and started runs, the run queue queued ones, and the event it owns is no longer
the dispatch sensor's. :func:`fail_unlaunched_runs` fails such a run once it is older than
run monitoring's start timeout, as run monitoring fails a run that never started, and
the DLQ's re-drive runs it again (no op failed: class ``unavailable``).
"""

from __future__ import annotations

import datetime as dt

from dagster import DagsterInstance, DagsterRunStatus, QueuedRunCoordinator, RunsFilter, SubmitRunContext

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.settings import database_url
from carinho_pipelines.store import store_for, utcnow
from carinho_pipelines.store.claims import own_event

from .dagster_internals import CeleryRunLauncher


class EventRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` (same configuration) that launches event runs at once
    when the instance runs them on warm workers."""

    def launches_directly(self, run) -> bool:
        return (
            tags.EVENT_ID in run.tags
            and tags.SYNC not in run.tags
            and isinstance(self._instance.run_launcher, CeleryRunLauncher)
        )

    def submit_run(self, context: SubmitRunContext):
        run = context.dagster_run
        if run.status == DagsterRunStatus.NOT_STARTED and is_first_run(run):
            owner = own_event(store_for(database_url()).engine, int(run.tags[tags.EVENT_ID]), run.run_id, utcnow())
            if owner is not None and owner != run.run_id:
                self._instance.report_run_canceled(
                    run, message=f"not launched: event {run.tags[tags.EVENT_ID]} already has run {owner} "
                                 "(submitted twice); it is processed once, by that run")
                return self._instance.get_run_by_id(run.run_id)
        if run.status == DagsterRunStatus.NOT_STARTED and self.launches_directly(run):
            self._instance.launch_run(run.run_id, context.workspace)
            return self._instance.get_run_by_id(run.run_id)
        return super().submit_run(context)


def is_first_run(run) -> bool:
    """An event's first run: not a re-execution, not a run of actions that waited."""
    return (tags.EVENT_ID in run.tags and run.parent_run_id is None
            and run.tags.get(tags.LAUNCHED_BY) in tags.FIRST_RUN_LAUNCHERS)


#: stranded runs failed per call at most (the dispatch sensor calls it every tick)
UNLAUNCHED_BATCH = 100


def fail_unlaunched_runs(instance: DagsterInstance, now: dt.datetime) -> list[str]:
    """Fail every run still ``NOT_STARTED`` longer than run monitoring's start timeout
    after it was created (its submission was interrupted); their ids."""
    timeout = instance.run_monitoring_start_timeout_seconds
    cutoff = now - dt.timedelta(seconds=timeout)
    stranded = instance.get_runs(
        filters=RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED], created_before=cutoff), limit=UNLAUNCHED_BATCH
    )
    for run in stranded:
        instance.report_run_failed(
            run, message=f"never launched: its submission was interrupted (the webserver or the database went away "
                         f"between creating the run and launching it); failed after {timeout} s so that the DLQ "
                         "re-drive runs it")
    return [run.run_id for run in stranded]
