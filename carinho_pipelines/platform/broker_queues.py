"""What the broker says about a carinho queue's Celery queue: how many runs wait in it,
taken by no worker yet. kombu only, no Dagster: the relay asks it too.

The one signal of strict priority for ``integrations-high``: while its queue has a
backlog, a run of another queue waits before it starts (platform/celery_app.py), and the
relay (relay/submit.py) and the dispatch sensor (events/sensors.py) hold their launches
of other queues' events, so that in a burst the machine's CPU, and the database's, go to
the leads first (benchmarks/README.md).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kombu import Connection
from kombu.exceptions import OperationalError

from carinho_pipelines.kernel.queues import HIGH

#: what an unreachable broker raises (kombu wraps most of them in OperationalError)
BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError, OperationalError)

#: seconds to wait for a broker connection before answering "nothing waits"
ACQUIRE_TIMEOUT_SECONDS = 2.0
#: how long, at most, work of another queue waits while integrations-high has a backlog
#: (a run in its worker, an event at the relay or the dispatch sensor)
YIELD_TO_HIGH_MAX_SECONDS = 10.0
#: how often a waiting run or launch looks again (~0.3 ms each)
YIELD_POLL_SECONDS = 0.05


def waiting(pool: Any, queue: str) -> int:
    """Messages in ``queue`` that no worker has taken (kombu counts every priority level);
    0 when the queue does not exist yet or the broker cannot be reached: a broker outage
    never holds anything back."""
    try:
        with pool.acquire(block=True, timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except conn.channel_errors:
                return 0  # the queue does not exist (yet): nothing waits in it
    except BROKER_ERRORS:
        return 0


_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def high_backlog(broker_url: str | None) -> int:
    """Runs waiting in integrations-high's Celery queue; 0 without a broker (no warm workers)."""
    return waiting(pool_for(broker_url), HIGH) if broker_url else 0


def pool_for(broker_url: str) -> Any:
    """This process's small kombu connection pool for ``broker_url`` (a new one after a fork)."""
    key = (os.getpid(), broker_url)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Connection(broker_url, connect_timeout=ACQUIRE_TIMEOUT_SECONDS).Pool(limit=2)
    return pool
