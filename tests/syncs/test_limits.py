"""Calls in flight per destination: the table, CARINHO_SYNC_CONCURRENCY, and the bound itself."""

from __future__ import annotations

import threading
import time

import pytest

from carinho_pipelines.syncs.engine import Caller, SyncConfig
from carinho_pipelines.syncs.limits import DESTINATION_CONCURRENCY, ENV, Slots, concurrency_table, limit_for


def test_the_variable_sets_every_system_or_named_ones(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert concurrency_table() == DESTINATION_CONCURRENCY
    monkeypatch.setenv(ENV, "3")
    assert limit_for("financeiro") == 3 and limit_for("a_system_not_in_the_table") == 3
    monkeypatch.setenv(ENV, "financeiro=16, operacao=2")
    assert limit_for("financeiro") == 16 and limit_for("operacao") == 2
    assert limit_for("crm") == DESTINATION_CONCURRENCY["crm"]
    # a run's concurrency caps it
    assert limit_for("financeiro", cap=4) == 4


@pytest.mark.parametrize("value", ["zero", "0", "financeiro", "financeiro=x", "=3", "999"])
def test_a_bad_value_is_a_clear_error(monkeypatch, value: str) -> None:
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ValueError, match=ENV):
        concurrency_table()


def test_a_run_never_has_more_calls_in_flight_to_a_destination_than_its_limit(monkeypatch) -> None:
    monkeypatch.setenv(ENV, "financeiro=2")
    caller = Caller(SyncConfig(), slots=Slots())
    lock, release = threading.Lock(), threading.Event()
    inside, most = [0], [0]

    def call() -> str:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(10)
        with lock:
            inside[0] -= 1
        return "ok"

    threads = [threading.Thread(target=caller, args=("financeiro", call)) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while inside[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inside[0] == 2
    # the other four are waiting for a slot, not calling
    assert sum(t.is_alive() for t in threads) == 6 and most[0] == 2
    release.set()
    for t in threads:
        t.join(10)
    assert most[0] == 2 and inside[0] == 0
