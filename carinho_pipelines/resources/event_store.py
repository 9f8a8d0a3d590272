"""The event store as a Dagster resource (the same database the relay writes)."""

from __future__ import annotations

import threading

from dagster import ConfigurableResource

from carinho_pipelines.store import EventStore

_stores: dict[str, EventStore] = {}
_lock = threading.Lock()


def store_for(url: str) -> EventStore:
    """One engine (and connection pool) per database URL per process."""
    with _lock:
        if url not in _stores:
            _stores[url] = EventStore(url)
        return _stores[url]


class EventStoreResource(ConfigurableResource):
    """The relay's event store: events, per-action ledger, WhatsApp outbox."""

    database_url: str

    @property
    def store(self) -> EventStore:
        return store_for(self.database_url)
