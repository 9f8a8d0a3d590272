"""The retry policy (CONTRACTS §1): 5 attempts in all, exponential backoff with
jitter, ``Retry-After`` honoured, the whole backoff well below the queue's SLA.
Defined once; every op derives its policy from here."""

from __future__ import annotations

import random

from dagster import Backoff, Jitter, RetryPolicy

from carinho_pipelines.kernel.queues import QUEUES

MAX_ATTEMPTS = 5
MAX_RETRIES = MAX_ATTEMPTS - 1
#: base delay = SLA / 40, so the four backoffs (1+2+4+8 = 15 bases) take ~3/8 of the SLA
SLA_FRACTION = 40


def base_delay(queue: str) -> float:
    return QUEUES[queue].sla_seconds / SLA_FRACTION


def retry_policy(queue: str) -> RetryPolicy:
    return RetryPolicy(
        max_retries=MAX_RETRIES, delay=base_delay(queue), backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )


def wait_seconds(queue: str, retry_number: int, retry_after: float | None = None) -> float:
    """Seconds before retry ``retry_number + 1``: exponential with ±20 % jitter; a
    destination's ``Retry-After`` is honoured up to a quarter of the SLA (longer waits
    belong to the DLQ's re-drive, not to a run holding its queue slot)."""
    base = base_delay(queue) * (2**retry_number)
    wait = base * random.uniform(0.8, 1.2)
    if retry_after:
        wait = max(wait, min(retry_after, QUEUES[queue].sla_seconds / 4))
    return round(wait, 3)
