"""The queue table (CONTRACTS §3): the one place queue names, SLAs, priorities and
concurrency limits are defined. Run tags, the run queue limits in ``dagster.yaml``
(checked by a test), metrics and docs derive from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Queue:
    name: str
    sla_seconds: int
    expected_per_hour: int
    #: ``dagster/priority`` tag of runs on this queue (higher runs first).
    priority: int
    #: max concurrent runs of this queue in Dagster's run queue.
    concurrency: int

    @property
    def niceness(self) -> int:
        """CPU niceness of the run workers serving this queue (0 for integrations-high),
        so that when the machine is saturated the most urgent runs get the CPU first:
        two steps per priority point (integrations 10, integrations-low 19), because at
        one step a burst's integrations workers still took about a third of the CPU
        from integrations-high's (benchmarks/README.md, "The burst")."""
        return max(0, min(19, 2 * (10 - self.priority)))

    @property
    def event_run_time_limit_seconds(self) -> int:
        """The hard time limit of an event run on this queue in its warm worker: far
        above the longest run the retry policy allows (each action: 5 attempts of at
        most a 10 s call, backoff ~3/8 of the SLA), so only a hung run reaches it; it is
        then killed and re-driven from the DLQ. Syncs and jobs are not limited."""
        return 300 + 4 * self.sla_seconds


QUEUES: dict[str, Queue] = {
    q.name: q
    for q in (
        Queue("integrations-high", 5, 100, priority=10, concurrency=4),
        Queue("integrations", 30, 500, priority=5, concurrency=4),
        Queue("notifications", 60, 200, priority=3, concurrency=2),
        Queue("integrations-low", 300, 50, priority=0, concurrency=2),
        Queue("integrations-retry", 600, 20, priority=-5, concurrency=2),
    )
}

HIGH = "integrations-high"
DEFAULT = "integrations"
NOTIFICATIONS = "notifications"
LOW = "integrations-low"
RETRY = "integrations-retry"
