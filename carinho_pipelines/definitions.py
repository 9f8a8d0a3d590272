"""The Dagster code location: one ``Definitions`` assembled in one place."""

from dagster import Definitions, EnvVar

from carinho_pipelines import monitoring, syncs
from carinho_pipelines.kernel import settings
from carinho_pipelines.dlq.sensors import dlq_failure_sensor, dlq_redrive_sensor
from carinho_pipelines.dlq.recover import dlq_recover
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.events.sensors import event_dispatch_sensor, paused_actions_sensor
from carinho_pipelines.events.whatsapp_outbox import flush_whatsapp_outbox, whatsapp_outbox_sensor
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.resources import build_resources


def _database_url() -> EnvVar | str:
    """``CARINHO_DATABASE_URL`` (resolved at run time), or the embedded SQLite file."""
    return EnvVar("CARINHO_DATABASE_URL") if settings.current().database_url else settings.database_url()


defs = Definitions.merge(
    Definitions(
        jobs=[*EVENT_JOBS.values(), flush_whatsapp_outbox, dlq_recover],
        sensors=[event_dispatch_sensor, paused_actions_sensor, whatsapp_outbox_sensor, dlq_failure_sensor, dlq_redrive_sensor],
    ),
    syncs.defs,
    monitoring.defs,
    Definitions(
        resources={
            **build_resources(),
            "event_store": EventStoreResource(database_url=_database_url()),
            syncs.LEDGER_KEY: syncs.SyncLedgerResource(database_url=_database_url()),
        }
    ),
)


def resolved_job(name: str):
    """A job with the code location's resources bound, for reconstructable execution
    outside the daemon (``dagster.build_reconstructable_job``)."""
    return defs.resolve_job_def(name)
