"""Run tag names (stable: the DLQ API, the run queue limits and ops' UI filters use them)."""

EVENT_ID = "carinho/event_id"
EVENT_TYPE = "carinho/event_type"
SOURCE = "carinho/source"
QUEUE = "carinho/queue"
SYNC = "carinho/sync"
#: DLQ state of a run: open (failed runs are in the DLQ) | replayed | archived
DLQ = "carinho/dlq"
PRIORITY = "dagster/priority"

#: Celery queue of a run when the Celery run launcher is configured (dagster-celery's tag)
CELERY_QUEUE = "dagster-celery/queue"


def event_run_tags(event: dict) -> dict[str, str]:
    """The tags of an event's run: set alike by the dispatch sensor and by the relay's
    direct submission (pure Python: the relay must not import dagster)."""
    from carinho_pipelines.queues import QUEUES

    queue = event["queue"]
    return {
        EVENT_ID: str(event["id"]),
        EVENT_TYPE: event["event_type"],
        SOURCE: event["source"],
        QUEUE: queue,
        PRIORITY: str(QUEUES[queue].priority),
        CELERY_QUEUE: queue,
        DLQ: "open",
    }
