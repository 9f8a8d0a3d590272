"""The run launcher: Dagster's ``CeleryRunLauncher`` (warm worker processes), falling
back to Dagster's default launcher (a fresh process per run) when the broker cannot be
reached, so a broker outage slows runs down but never stops them."""

from __future__ import annotations

from .dagster_internals import (
    CheckRunHealthResult,
    CeleryRunLauncher,
    DefaultRunLauncher,
    LaunchRunContext,
    WorkerStatus,
    _get_run_priority,
)
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG, DAGSTER_CELERY_TASK_ID_TAG

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.queues import QUEUES

from .broker_queues import BROKER_ERRORS


class FallbackCeleryRunLauncher(CeleryRunLauncher):
    _fallback: DefaultRunLauncher | None = None

    def fallback(self) -> DefaultRunLauncher:
        if self._fallback is None:
            launcher = DefaultRunLauncher()
            launcher.register_instance(self._instance)
            self._fallback = launcher
        return self._fallback

    def launch_run(self, context: LaunchRunContext) -> None:
        try:
            super().launch_run(context)
        except BROKER_ERRORS as exc:
            self._instance.report_engine_event(
                f"Celery broker unreachable ({exc.__class__.__name__}); launching the run in a fresh process instead",
                context.dagster_run,
                cls=self.__class__,
            )
            self.fallback().launch_run(context)

    def _launch_celery_task_run(self, run, task_signature, routing_key: str) -> None:
        """As dagster-celery's, but routed by the queue name itself: a worker started with
        ``-Q integrations`` binds its queue with routing key ``integrations`` on a direct
        exchange, so dagster-celery's ``<queue>.<task>`` key would never reach it. One
        engine event, once the task is sent (dagster-celery also writes one before it:
        a write per run on the launch path that said nothing the second does not). An
        event run gets its queue's hard time limit (``Queue.event_run_time_limit_seconds``):
        a run hung past it is killed by its worker, and run monitoring fails it for the
        DLQ re-drive, instead of it staying ``STARTED`` for good."""
        queue = run.tags.get(DAGSTER_CELERY_QUEUE_TAG, self.default_queue)
        options = {}
        if tags.EVENT_ID in run.tags and tags.SYNC not in run.tags and queue in QUEUES:
            options["time_limit"] = QUEUES[queue].event_run_time_limit_seconds
        result = task_signature.apply_async(priority=_get_run_priority(run), queue=queue, routing_key=queue, **options)
        self._instance.add_run_tags(run.run_id, {DAGSTER_CELERY_TASK_ID_TAG: result.task_id})
        self._instance.report_engine_event(
            f"Celery task {result.task_id} sent to queue {queue}.", run, cls=self.__class__
        )

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        if DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            # launched by the fallback: as with Dagster's default launcher there is no
            # worker to ask (UNKNOWN would make run monitoring fail a healthy run)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "launched in a process, not a Celery task")
        health = super().check_run_worker_health(run)
        if health.status != WorkerStatus.RUNNING:
            self._unanswered.pop(run.run_id, None)
            return health
        return self._worker_still_there(run, health)

    #: run monitoring's polls (10 s apart) in a row in which the worker node that started
    #: a STARTED task does not say it still runs it, before its run is declared failed
    WORKER_LOST_AFTER = 3
    #: the states in which a worker node still holds a task (Celery's ``query_task``)
    HELD = frozenset({"active", "reserved", "scheduled"})

    @property
    def _unanswered(self) -> dict[str, int]:
        if "_unanswered_polls" not in self.__dict__:
            self.__dict__["_unanswered_polls"] = {}
        return self.__dict__["_unanswered_polls"]

    def _worker_still_there(self, run, health: CheckRunHealthResult) -> CheckRunHealthResult:
        """A task stays STARTED in the result backend for good when nobody is left to
        write its end: its whole worker died (the container or machine gone, the parent
        process OOM-killed), or its end was not written (the result backend restarting
        right then). Run monitoring would then see the run running forever. So the node
        that took the task (the STARTED state's ``hostname``) must say it still holds
        it (Celery's ``query_task``); after :attr:`WORKER_LOST_AFTER` polls in a row
        without that answer the run is failed (and the DLQ re-drive re-executes it). An
        unreachable broker is no answer either way: it does not count."""
        task_id = run.tags[DAGSTER_CELERY_TASK_ID_TAG]
        info = self.celery.AsyncResult(task_id).info
        node = info.get("hostname") if isinstance(info, dict) else None
        if not node:
            return health
        try:
            replies = self.celery.control.inspect(destination=[node], timeout=2.0).query_task(task_id) or {}
        except BROKER_ERRORS:
            return health
        state = ((replies.get(node) or {}).get(task_id) or [None])[0]
        if state in self.HELD:
            self._unanswered.pop(run.run_id, None)
            return health
        misses = self._unanswered[run.run_id] = self._unanswered.get(run.run_id, 0) + 1
        if misses < self.WORKER_LOST_AFTER:
            return health
        self._unanswered.pop(run.run_id, None)
        why = "no longer answers (killed, or its container or machine is gone)" if node not in replies else (
            "answers but no longer runs it (its end was not recorded)")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the Celery worker {node} that started this run {why}")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is not None and DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            return self.fallback().terminate(run_id)
        return super().terminate(run_id)
