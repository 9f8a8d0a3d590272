"""A destination's concurrency slot, claimed by the action op itself (issues 16 and 17).

The slots are Dagster's own concurrency pools: ``destination-<name>``, with the limits
of :data:`limits.LIMITS` written by ``carinho instance limits``, shown in the UI
(Deployment → Concurrency), assigned to waiting steps by run priority, and freed by the
daemon when a run ended holding one (``free_slots_after_run_end_seconds``: a worker
killed mid-call). The op claims its slot around the call itself instead of declaring
``pool=``, for two reasons. Behind a long line (a flood to one destination) the call
does not wait in its worker at all: the action waits outside the run (``paused``, busy)
and is run again when the destination has room, so the run's other actions, and the
other destinations' runs, go on. And Dagster's executor retries a blocked claim after 1 s, then 10 % later
each time up to 15 s: in a burst every brief contention for a slot cost a lead's run a
second or more (benchmarks/README.md, "The burst"). Here a blocked claim is retried
every :data:`POLL_SECONDS`, and only the call holds the slot, not the ledger writes
around it.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from . import limits

#: how often a blocked claim asks again (one small query on the instance's storage)
POLL_SECONDS = 0.05
#: a claim waits in its worker only while fewer than this many calls per slot wait ahead
LINE_PER_SLOT = 1


#: how long a process trusts its list of the pools that have a limit
POOLS_TTL_SECONDS = 30.0
_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # storage → (read at, pools)


def _limited_pools(storage) -> frozenset[str]:
    """The pools with a limit written (``carinho instance limits``), read at most every
    :data:`POOLS_TTL_SECONDS` per storage: a query less per call."""
    now = time.monotonic()
    cached = _pools.get(storage)
    if cached is None or now - cached[0] > POOLS_TTL_SECONDS:
        cached = (now, frozenset(storage.get_concurrency_keys()))
        _pools[storage] = cached
    return cached[1]


def _line_is_short(info) -> bool:
    """Fewer calls wait for the pool (``info``: Dagster's ConcurrencyKeyInfo) than it
    has slots, times :data:`LINE_PER_SLOT` (this call counts as waiting)."""
    return info.pending_step_count <= max(1, LINE_PER_SLOT * info.slot_count)


@contextmanager
def slot(instance, destination: str, run_id: str, step_key: str, priority: int,
         timeout: float) -> Iterator[bool]:
    """Hold one of ``destination``'s slots for the block; yields False when none came
    within ``timeout`` seconds, or at once when more calls wait for the pool than it has
    slots (the caller then does not call). ``instance`` is the run's DagsterInstance."""
    pool = limits.pool_of(destination)
    if pool is None:
        yield True
        return
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or pool not in _limited_pools(storage):
        yield True  # as Dagster's executor treats a pool it cannot or need not limit
        return
    deadline = time.monotonic() + timeout
    try:
        claimed = storage.claim_concurrency_slot(pool, run_id, step_key, priority).is_claimed
        # behind a line longer than the pool's slots (a flood, a slow destination) there is
        # no point waiting in a worker: give up at once
        if not claimed and _line_is_short(storage.get_concurrency_info(pool)):
            while not claimed and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)  # the pool's next free slot is assigned to us, by priority
                claimed = storage.claim_concurrency_slot(pool, run_id, step_key, priority).is_claimed
        yield claimed
    finally:
        # frees the slot, or withdraws the claim still waiting (Dagster then assigns the
        # freed slot to the next waiting step)
        storage.free_concurrency_slot_for_step(run_id, step_key)
