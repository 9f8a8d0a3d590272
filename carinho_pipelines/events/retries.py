"""The retry policy (CONTRACTS §1): 5 attempts in all, exponential backoff with
jitter, ``Retry-After`` honoured, the whole backoff well below the queue's SLA.
Defined once; every op derives its policy from here."""

from __future__ import annotations

from dagster import Backoff, Jitter, RetryPolicy

from carinho_pipelines.kernel.queues import QUEUES

MAX_ATTEMPTS = 5
MAX_RETRIES = MAX_ATTEMPTS - 1
#: base delay = SLA / 70: Dagster's exponential backoff waits (2**n - 1) bases before
#: retry n, so the four waits (1+3+7+15 = 26 bases, ± one base each) take ~3/8 of the SLA
SLA_FRACTION = 70


def base_delay(queue: str) -> float:
    return QUEUES[queue].sla_seconds / SLA_FRACTION


def retry_policy(queue: str) -> RetryPolicy:
    return RetryPolicy(
        max_retries=MAX_RETRIES, delay=base_delay(queue), backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )


def wait_seconds(queue: str, retry_number: int, retry_after: float | None = None) -> float:
    """Seconds before retry ``retry_number + 1``: the queue's :func:`retry_policy` as
    Dagster computes it (``RetryPolicy.calculate_delay``, exponential, ± one base of
    jitter). Only the ``Retry-After`` clamp is the hub's: a destination's ``Retry-After``
    is honoured up to a quarter of the SLA (longer waits belong to the DLQ's re-drive,
    not to a run holding its queue slot)."""
    wait = max(0.0, float(retry_policy(queue).calculate_delay(retry_number + 1)))
    if retry_after:
        wait = max(wait, min(retry_after, QUEUES[queue].sla_seconds / 4))
    return round(wait, 3)
