"""Run tag names (stable: the DLQ API, the run queue limits and ops' UI filters use them)."""

EVENT_ID = "carinho/event_id"
EVENT_TYPE = "carinho/event_type"
SOURCE = "carinho/source"
QUEUE = "carinho/queue"
SYNC = "carinho/sync"
#: DLQ state of a run: open (failed runs are in the DLQ) | replayed | archived
DLQ = "carinho/dlq"
PRIORITY = "dagster/priority"
