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

BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)
try:  # kombu's error for an unreachable broker
    from kombu.exceptions import OperationalError

    BROKER_ERRORS = (*BROKER_ERRORS, OperationalError)
except ImportError:  # pragma: no cover - kombu comes with celery
    pass


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
        exchange, so dagster-celery's ``<queue>.<task>`` key would never reach it."""
        queue = run.tags.get(DAGSTER_CELERY_QUEUE_TAG, self.default_queue)
        self._instance.report_engine_event("Creating Celery run worker job task", run, cls=self.__class__)
        result = task_signature.apply_async(priority=_get_run_priority(run), queue=queue, routing_key=queue)
        self._instance.add_run_tags(run.run_id, {DAGSTER_CELERY_TASK_ID_TAG: result.task_id})
        self._instance.report_engine_event(
            f"Celery task {result.task_id} sent to queue {queue}.", run, cls=self.__class__
        )

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        if DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            # launched by the fallback: as with Dagster's default launcher there is no
            # worker to ask (UNKNOWN would make run monitoring fail a healthy run)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "launched in a process, not a Celery task")
        return super().check_run_worker_health(run)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is not None and DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            return self.fallback().terminate(run_id)
        return super().terminate(run_id)
