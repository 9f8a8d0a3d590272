"""The event store as a Dagster resource (the same database the relay writes)."""

from __future__ import annotations

from dagster import ConfigurableResource

from carinho_pipelines.store import EventStore, store_for


class EventStoreResource(ConfigurableResource):
    """The relay's event store: events, per-action ledger, WhatsApp outbox."""

    database_url: str

    @property
    def store(self) -> EventStore:
        return store_for(self.database_url)
