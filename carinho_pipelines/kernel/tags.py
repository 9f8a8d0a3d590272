"""Run tag names (stable: the DLQ API, the run queue limits and ops' UI filters use them).

Every ``carinho/…`` tag key is defined here and nowhere else; pure Python (the relay
imports it without Dagster).
"""

EVENT_ID = "carinho/event_id"
EVENT_TYPE = "carinho/event_type"
SOURCE = "carinho/source"
QUEUE = "carinho/queue"
SYNC = "carinho/sync"
#: the action's destination, on each event op
DESTINATION = "carinho/destination"
PRIORITY = "dagster/priority"

#: DLQ state of a *failed* run: open (in the DLQ) | replayed | archived. Set when the
#: run fails; a run that succeeded carries no DLQ tag at all.
DLQ = "carinho/dlq"
DLQ_OPEN, DLQ_REPLAYED, DLQ_ARCHIVED = "open", "replayed", "archived"
#: what failed in a DLQ item (set with the DLQ tag, for the UI's filters)
ERROR_CLASS = "carinho/error_class"
FAILED_OPS = "carinho/failed_ops"
FAILED_DESTINATIONS = "carinho/failed_destinations"
ARCHIVED_BY = "carinho/archived_by"
ARCHIVED_AT = "carinho/archived_at"
ARCHIVE_REASON = "carinho/archive_reason"
REPLAYED_BY = "carinho/replayed_by"
#: tags only a failed run may carry (a re-execution never inherits them)
FAILURE_TAGS: tuple[str, ...] = (DLQ, ERROR_CLASS, FAILED_OPS, FAILED_DESTINATIONS, ARCHIVED_BY, ARCHIVED_AT,
                                 ARCHIVE_REASON, REPLAYED_BY)

#: the destinations a run's actions wait for (paused by ops); the run itself succeeded
PAUSED = "carinho/paused"

#: who launched a run: relay | dispatch_sensor | auto_redrive | api:<key name> |
#: cli:<key name> | schedule | whatsapp_outbox_sensor | dagster_ui | event_run | paused_actions_sensor | dlq_recover
LAUNCHED_BY = "carinho/launched_by"
BY_RELAY = "relay"
BY_DISPATCH_SENSOR = "dispatch_sensor"
BY_AUTO_REDRIVE = "auto_redrive"
BY_SCHEDULE = "schedule"
BY_OUTBOX_SENSOR = "whatsapp_outbox_sensor"
BY_DAGSTER_UI = "dagster_ui"
#: a run that created an event (a lead from an unknown WhatsApp phone) submitted its run
BY_EVENT_RUN = "event_run"
#: the actions that waited for a paused destination, launched once it is resumed
BY_PAUSE_SENSOR = "paused_actions_sensor"
#: a re-execution launched by a window recovery (POST /api/dlq/recover)
BY_RECOVERY = "dlq_recover"
#: who launches an event's *first* run; an event has exactly one such run (the run
#: coordinator cancels any later one: platform/coordinator.py)
FIRST_RUN_LAUNCHERS = frozenset({BY_RELAY, BY_DISPATCH_SENSOR, BY_EVENT_RUN})

#: a manual sync run: why (manual) and which API key asked for it
TRIGGER = "carinho/trigger"
REQUESTED_BY = "carinho/requested_by"

#: Dagster's own tags the hub reads
PARENT_RUN_ID = "dagster/parent_run_id"
ROOT_RUN_ID = "dagster/root_run_id"
PARTITION = "dagster/partition"
SCHEDULE_NAME = "dagster/schedule_name"
SCHEDULED_EXECUTION_TIME = "dagster/scheduled_execution_time"
BACKFILL = "dagster/backfill"

#: Celery queue of a run when the Celery run launcher is configured (dagster-celery's tag)
CELERY_QUEUE = "dagster-celery/queue"


def launched_by_api(key_name: str, *, cli: bool = False) -> str:
    """``api:<key name>`` (``cli:<key name>`` when the ``carinho`` CLI made the request)."""
    return f"{'cli' if cli else 'api'}:{key_name}"[:64]


def event_run_tags(event: dict, launched_by: str = BY_DISPATCH_SENSOR) -> dict[str, str]:
    """The tags of an event's run: set alike by the dispatch sensor and by the relay's
    direct submission (pure Python: the relay must not import dagster)."""
    from carinho_pipelines.kernel.queues import QUEUES

    queue = event["queue"]
    return {
        EVENT_ID: str(event["id"]),
        EVENT_TYPE: event["event_type"],
        SOURCE: event["source"],
        QUEUE: queue,
        PRIORITY: str(QUEUES[queue].priority),
        CELERY_QUEUE: queue,
        LAUNCHED_BY: launched_by,
    }


def sync_run_tags(sync: str) -> dict[str, str]:
    """Tags of every run of a sync (queue limits, priority); the job carries them, so
    scheduled, manual and backfill runs alike."""
    from carinho_pipelines.kernel.queues import LOW, QUEUES

    return {QUEUE: LOW, SYNC: sync, PRIORITY: str(QUEUES[LOW].priority)}
