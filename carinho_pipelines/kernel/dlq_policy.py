"""The DLQ recovery's bounds (issue 16), in one place: the relay validates a request
with them without importing Dagster, and the ``dlq_recover`` job applies them."""

import datetime as dt

#: the longest window one recovery may cover
MAX_RECOVER_WINDOW = dt.timedelta(days=31)
#: re-executions launched per second by a recovery (the run queue and the workers then
#: take them at their own pace; this keeps one recovery from flooding the queue)
RECOVER_RATE_PER_SECOND = 2.0
#: the job a recovery runs (carinho_pipelines/dlq/recover.py)
RECOVER_JOB = "dlq_recover"
