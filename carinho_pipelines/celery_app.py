"""Warm run workers: the Celery app behind ``CeleryRunLauncher`` (dagster-celery).

``carinho worker --queues integrations-high`` runs ``celery -A carinho_pipelines.celery_app
worker`` on one or more of our queues. The worker's parent process imports Dagster and
the code location once; its prefork children inherit them, so a run no longer pays
for a fresh interpreter (~1.9 CPU-s of ``import dagster`` plus the code location).
"""

from __future__ import annotations

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

from carinho_pipelines.instance import celery_settings

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
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)

# warm the children: they fork from a parent that already imported the code location
import carinho_pipelines.definitions  # noqa: E402,F401
