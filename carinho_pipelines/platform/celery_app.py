"""Warm run workers: the Celery app behind ``CeleryRunLauncher`` (dagster-celery).

``carinho worker --queues integrations-high`` runs ``celery -A carinho_pipelines.platform.celery_app
worker`` on one or more of our queues. The worker's parent process imports Dagster and
the code location once; its prefork children inherit them, so a run no longer pays
for a fresh interpreter (~1.9 CPU-s of ``import dagster`` plus the code location).

The two tasks are dagster-celery's (same names, same arguments, same run body), except
that each worker process keeps one ``DagsterInstance`` for all the runs it executes
instead of building one per run (reading dagster.yaml, constructing the storage: ~8 %
of a run's CPU in the profile behind issue 8).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Any

from celery.signals import worker_process_init
from dagster import DagsterInstance
from dagster_celery.config import TASK_EXECUTE_JOB_NAME, TASK_RESUME_JOB_NAME
from dagster_celery.make_app import make_app

from carinho_pipelines.platform.dagster_internals import (
    ExecuteRunArgs,
    ResumeRunArgs,
    _execute_run_command_body,
    _resume_run_command_body,
    unpack_value,
)
from carinho_pipelines.kernel.queues import HIGH
from carinho_pipelines.platform.instance import celery_settings
from carinho_pipelines.platform import broker_queues

_settings = celery_settings()
app = make_app(
    {
        "broker": _settings["broker"],
        "backend": _settings["backend"],
        "include": [],
        "config_source": _settings["config_source"],
        "task_default_queue": _settings["default_queue"],
    }
)

_instance: DagsterInstance | None = None
_instance_pid: int | None = None
_instance_lock = threading.Lock()


def worker_instance() -> DagsterInstance:
    """This worker process's Dagster instance (a new one after a fork)."""
    global _instance, _instance_pid
    with _instance_lock:
        if _instance is None or _instance_pid != os.getpid():
            _instance, _instance_pid = DagsterInstance.get(), os.getpid()
        return _instance


@worker_process_init.connect
def _warm_instance(**_kwargs: Any) -> None:
    """Each pool process opens its instance (storage, run tables) when it is forked, not
    inside the first run it is given: that run's latency is the SLA's, not the pool's."""
    worker_instance().get_runs(limit=1)


def _discard(_event: Any) -> None:
    """The run's events are already in the event log; nobody reads this stream."""


def _run_in_this_process(command_body: Any, args_type: type, packed: Any) -> int:
    args = unpack_value(val=packed, as_type=args_type)
    return command_body(
        instance=worker_instance(),
        run_id=args.run_id,
        write_stream_fn=_discard,
        set_exit_code_on_failure=True if args.set_exit_code_on_failure is None else args.set_exit_code_on_failure,
    )


# A run of any other queue waits, at most broker_queues.YIELD_TO_HIGH_MAX_SECONDS, while
# integrations-high has runs waiting for a worker: strict priority across the worker
# groups, so that in a burst the machine's CPU (and PostgreSQL's) goes to
# integrations-high first. Niceness alone was not enough: the database and the webserver
# serve every group at the same priority (benchmarks/README.md, "The burst").
def high_backlog() -> int:
    """Runs waiting in integrations-high's Celery queue (taken by no worker yet)."""
    return broker_queues.waiting(app.pool, HIGH)


def yield_to_high(queue: str | None) -> float:
    """Wait while integrations-high has a backlog, for a run of ``queue``; returns the
    seconds waited."""
    if queue is None or queue == HIGH:
        return 0.0
    started = time.monotonic()
    while time.monotonic() - started < broker_queues.YIELD_TO_HIGH_MAX_SECONDS and high_backlog() > 0:
        time.sleep(broker_queues.YIELD_POLL_SECONDS)
    return time.monotonic() - started


@app.task(bind=True, name=TASK_EXECUTE_JOB_NAME, track_started=True)
def execute_job(task: Any, execute_job_args_packed: Any) -> int:
    yield_to_high((task.request.delivery_info or {}).get("routing_key"))
    return _run_in_this_process(_execute_run_command_body, ExecuteRunArgs, execute_job_args_packed)


@app.task(bind=True, name=TASK_RESUME_JOB_NAME, track_started=True)
def resume_job(_task: Any, resume_job_args_packed: Any = None, execute_job_args_packed: Any = None) -> int:
    # dagster-celery's launcher sends the resume arguments as ``execute_job_args_packed``
    return _run_in_this_process(_resume_run_command_body, ResumeRunArgs, resume_job_args_packed or execute_job_args_packed)


# Warm the children: they fork from a parent that already imported the code location and
# resolved its repository and jobs (otherwise the first run in each pool process pays
# ~0.3 s for that, inside its SLA). The platform serves a code location named by
# configuration (as workspace.yaml names it); it does not import the one above it.
CODE_LOCATION_MODULE = "carinho_pipelines.definitions"  # workspace.yaml's python_module
importlib.import_module(CODE_LOCATION_MODULE).defs.get_repository_def().get_all_jobs()
