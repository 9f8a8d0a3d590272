"""Group commit: concurrent webhooks share one transaction.

Every request still gets its 202 only after *its* event is committed; what changes
is that the events that arrive while a transaction is in flight are committed
together in the next one (one commit, one WAL flush for the batch). Under light load
a batch is one event and nothing waits; under load the batch grows and the store's
cost per event falls — measured by ``benchmarks/relay_ingest.py``.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from carinho_pipelines.store import Envelope, EventStore, Ingested

MAX_BATCH = 128
#: transactions in flight at once (each on its own pooled connection)
WRITERS = 2


class GroupCommitter:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._pending: list[tuple[Envelope, asyncio.Future]] = []
        self._writers = 0
        self._tasks: set[asyncio.Task] = set()  # held: the loop keeps only weak references

    async def ingest(self, env: Envelope) -> Ingested:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((env, future))
        if self._writers < WRITERS:
            self._writers += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def drain(self) -> None:
        """Wait until every event handed to :meth:`ingest` is committed (or failed): at
        shutdown, no request that is being answered loses its commit."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results = await run_in_threadpool(self.store.ingest_many, [env for env, _ in batch])
                except Exception as exc:  # the store is down: every waiting request gets its 503
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writers -= 1
