"""The Dagster code location: one ``Definitions`` assembled in one place."""

from dagster import Definitions, EnvVar

from carinho_pipelines import settings
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.events.sensors import event_dispatch_sensor, flush_whatsapp_outbox, whatsapp_outbox_sensor
from carinho_pipelines.events.store_resource import EventStoreResource
from carinho_pipelines.resources import build_resources


def event_store_resource() -> EventStoreResource:
    if settings.env("CARINHO_DATABASE_URL"):
        return EventStoreResource(database_url=EnvVar("CARINHO_DATABASE_URL"))
    return EventStoreResource(database_url=settings.database_url())


defs = Definitions(
    jobs=[*EVENT_JOBS.values(), flush_whatsapp_outbox],
    sensors=[event_dispatch_sensor, whatsapp_outbox_sensor],
    resources={**build_resources(), "event_store": event_store_resource()},
)
