"""The event store: its engine, every table, the migrations, the submission claim, the
API-key store and the time helpers.

The bottom layer: it imports neither Dagster nor the relay nor the domains (only the
settings of the kernel). The relay and the pipelines both build on it; each domain keeps
its own SQL next to its code, on these public names.
"""

from .clock import as_utc, utcnow
from .engine import POOL_SIZE, dialect_insert, make_engine
from .event_store import STATUS_RANK, Envelope, EventStore, Ingested, StoreUnavailable, store_for

__all__ = [
    "POOL_SIZE", "STATUS_RANK", "Envelope", "EventStore", "Ingested", "StoreUnavailable",
    "as_utc", "dialect_insert", "make_engine", "store_for", "utcnow",
]
