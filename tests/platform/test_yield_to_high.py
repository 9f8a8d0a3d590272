"""Strict priority across the worker groups (issue 17): a run of a lower-priority queue
waits while integrations-high has runs waiting for a worker, on a real broker."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import threading

import pytest
import redis

from tests.support import free_port, wait_for


@pytest.fixture
def celery_app(monkeypatch):
    server = shutil.which("redis-server")
    assert server, "redis-server is required for the Celery tests"
    port = free_port()
    broker = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = redis.Redis(port=port)
        wait_for(lambda: _answers(client), timeout=30, what="the broker answering", interval=0.05)
        monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", f"redis://127.0.0.1:{port}/0")
        sys.modules.pop("carinho_pipelines.platform.celery_app", None)  # bound to the broker at import
        module = importlib.import_module("carinho_pipelines.platform.celery_app")
        yield module, client
        module.app.pool.force_close_all()
        sys.modules.pop("carinho_pipelines.platform.celery_app", None)
    finally:
        broker.kill()
        broker.wait(timeout=10)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_lower_priority_run_waits_while_integrations_high_has_a_backlog(celery_app):
    module, client = celery_app
    assert module.high_backlog() == 0  # the queue does not even exist yet
    assert module.yield_to_high("integrations") < module.YIELD_POLL_SECONDS * 4  # nothing to yield to

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
    assert not other.is_alive() and 1.0 <= waited[0] < module.YIELD_TO_HIGH_MAX_SECONDS
