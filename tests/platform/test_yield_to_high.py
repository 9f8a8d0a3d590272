"""Strict priority across the worker groups (issue 17): a run of a lower-priority queue
waits while integrations-high has runs waiting for a worker, on a real broker."""

from __future__ import annotations

import importlib
import sys
import threading

import pytest

from carinho_pipelines.platform import broker_queues


@pytest.fixture
def celery_app(redis_broker, monkeypatch):
    url, client = redis_broker
    monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", url)
    sys.modules.pop("carinho_pipelines.platform.celery_app", None)  # bound to the broker at import
    module = importlib.import_module("carinho_pipelines.platform.celery_app")
    yield module, client
    module.app.pool.force_close_all()
    sys.modules.pop("carinho_pipelines.platform.celery_app", None)


def test_a_lower_priority_run_waits_while_integrations_high_has_a_backlog(celery_app):
    module, client = celery_app
    assert module.high_backlog() == 0  # the queue does not even exist yet
    assert module.yield_to_high("integrations") < broker_queues.YIELD_POLL_SECONDS * 4  # nothing to yield to

    client.lpush("integrations-high", "a run waiting for a worker")
    assert module.high_backlog() == 1
    waited: list[float] = []
    other = threading.Thread(target=lambda: waited.append(module.yield_to_high("integrations")))
    other.start()
    other.join(timeout=1.0)
    assert other.is_alive(), "an integrations run went ahead of a waiting integrations-high run"
    assert module.yield_to_high("integrations-high") == 0.0  # integrations-high itself never waits

    client.delete("integrations-high")  # its worker took it
    other.join(timeout=10)
    assert not other.is_alive() and 1.0 <= waited[0] < broker_queues.YIELD_TO_HIGH_MAX_SECONDS


def test_the_relay_holds_other_queues_launches_while_integrations_high_has_a_backlog(celery_app):
    """The same signal at launch: a notifications event waits in the relay while a lead's
    run waits for a worker; a lead that comes meanwhile is launched at once."""
    import asyncio

    from relay import submit

    _module, client = celery_app
    launched: list[int] = []

    class Recording(submit.Submitter):
        def submit_now(self, event_id):
            launched.append(event_id)

    async def until(predicate, timeout):
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {launched}"
            await asyncio.sleep(0.01)

    async def scenario():
        submitter = Recording(store=None)
        client.lpush("integrations-high", "a lead's run waiting for a worker")
        await submitter.submit(1, "notifications")
        await asyncio.sleep(0.5)  # the notifications event has had every chance to go
        assert launched == []
        await submitter.submit(2, "integrations-high")
        await until(lambda: launched == [2], timeout=10)
        client.delete("integrations-high")  # its worker took it
        await until(lambda: launched == [2, 1], timeout=10)
        await submitter.drain()
        await submitter.close()

    asyncio.run(scenario())
