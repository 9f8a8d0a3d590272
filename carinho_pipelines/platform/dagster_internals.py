"""Every private Dagster (and dagster-celery, dagster-postgres) name the hub uses, in one
place, with why. Written for the versions pinned in setup.py (:data:`WRITTEN_FOR`):
``tests/platform/test_dagster_internals.py`` fails loudly when the installed ones differ, so an
upgrade starts by re-checking this file.

Import from here, never from ``dagster._…`` directly (the import contracts see only
modules; this file is the fence).
"""

from __future__ import annotations

#: the versions this file was checked against
WRITTEN_FOR = {"dagster": "1.13.27", "dagster-celery": "0.29.27", "dagster-postgres": "0.29.27"}

# -- run states -----------------------------------------------------------------------
# The statuses Dagster itself counts as "in progress" (STARTING/STARTED/CANCELING…): the
# outbox sensor and the queue metrics must agree with the UI's notion. No public export.
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES  # noqa: E402

# -- re-execution ---------------------------------------------------------------------
# The tags Dagster drops when it re-executes a run (UI "re-execute from failure"): a DLQ
# re-drive drops the same ones, so its child looks like the UI's.
from dagster._core.storage.tags import TAGS_TO_MAYBE_OMIT_ON_RETRY  # noqa: E402
# What a re-execution from failure would run again (the failed and unfinished steps),
# worked out as Dagster's webserver does; it answers HTTP 500 when that is nothing (a
# run that failed after its last op), so the DLQ re-drive asks first.
from dagster._core.execution.plan.state import KnownExecutionState  # noqa: E402

# -- run tags removal -----------------------------------------------------------------
# Dagster has no public API to *remove* a run tag; the DLQ success sensor must remove
# the failure tags a re-execution copied. Done on the run storage's own tables, in one
# transaction, the way SqlRunStorage.add_run_tags writes them (dlq/items.py).
from dagster._core.storage.runs.schema import RunsTable, RunTagsTable  # noqa: E402
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage  # noqa: E402
from dagster._serdes import serialize_value  # noqa: E402
from dagster._time import get_current_datetime  # noqa: E402

# -- retention ------------------------------------------------------------------------
# Purging old sensor and schedule ticks (monitoring/retention.py) needs the tick types;
# the instance's purge_ticks takes them but they are not exported.
from dagster._core.definitions.run_request import InstigatorType  # noqa: E402
from dagster._core.scheduler.instigation import TickStatus  # noqa: E402

# -- pooled storage -------------------------------------------------------------------
# The pooled PostgreSQL storage subclasses (platform/storage.py) are configurable classes
# and must report their own class data for the instance to re-create them in children.
from dagster._serdes import ConfigurableClassData, unpack_value  # noqa: E402

# -- cached SQLite storage ------------------------------------------------------------
# The embedded default's storage classes (platform/sqlite_storage.py) subclass Dagster's
# SQLite ones (the consolidated event log: one WAL file for every run) and reuse its
# engine factory and file naming; none is public API.
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage  # noqa: E402
from dagster._core.storage.runs import SqliteRunStorage  # noqa: E402
from dagster._core.storage.schedules import SqliteScheduleStorage  # noqa: E402
from dagster._core.storage.sql import create_engine as create_sqlite_engine  # noqa: E402
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string  # noqa: E402

# -- warm workers ---------------------------------------------------------------------
# dagster-celery's worker task runs `dagster api execute_run` in a subprocess per run;
# the warm worker calls the same command bodies in its already-loaded process instead
# (platform/celery_app.py), with the same argument types.
from dagster._cli.api import _execute_run_command_body, _resume_run_command_body  # noqa: E402
from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs  # noqa: E402

# The launcher subclasses dagster-celery's CeleryRunLauncher (platform/launcher.py):
# the run-health result types of the launcher interface, the default launcher it falls
# back to without a broker, and the private priority helper and submit hook it overrides
# (``_launch_celery_task_run``: where a run becomes a Celery task).
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, LaunchRunContext, WorkerStatus  # noqa: E402
from dagster_celery.launcher import CeleryRunLauncher, _get_run_priority  # noqa: E402

#: the CeleryRunLauncher method the hub's launcher overrides (checked by the test)
CELERY_SUBMIT_HOOK = "_launch_celery_task_run"

__all__ = [
    "CELERY_SUBMIT_HOOK", "CeleryRunLauncher", "ConsolidatedSqliteEventLogStorage",
    "SQLITE_BUSY_TIMEOUT_SECONDS", "SqliteRunStorage", "SqliteScheduleStorage", "create_db_conn_string",
    "create_sqlite_engine", "CheckRunHealthResult",
    "ConfigurableClassData", "DefaultRunLauncher", "ExecuteRunArgs", "IN_PROGRESS_RUN_STATUSES", "InstigatorType",
    "KnownExecutionState",
    "LaunchRunContext", "ResumeRunArgs", "RunTagsTable", "RunsTable", "SqlRunStorage", "TAGS_TO_MAYBE_OMIT_ON_RETRY",
    "TickStatus", "WRITTEN_FOR", "WorkerStatus", "_execute_run_command_body", "_get_run_priority",
    "_resume_run_command_body", "get_current_datetime", "serialize_value", "unpack_value",
]
