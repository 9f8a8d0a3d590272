"""Per-destination pacing and concurrency (issue 16): one table; Z-API's rate holds,
measured from the sandbox's recorded call times; each destination's actions are in its
Dagster concurrency pool, whose limit ``carinho instance limits`` writes."""

from __future__ import annotations

import threading

from click.testing import CliRunner
from dagster import DagsterInstance

from carinho_pipelines.cli import main
from carinho_pipelines.destinations import limits
from carinho_pipelines.events import whatsapp_outbox
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.platform.instance import prepare_dagster_home
from carinho_pipelines.resources import ZApiResource


def test_slots_are_handed_out_one_interval_apart_even_when_asked_at_once(hub):
    now = 1_000_000.0
    waits: list[float] = []
    lock = threading.Lock()

    def ask():
        wait = limits.reserve(hub.store, "whatsapp", now=now)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    interval = 1 / limits.LIMITS["whatsapp"].per_second
    assert sorted(round(w / interval) for w in waits) == list(range(8))  # no two share a slot
    assert limits.reserve(hub.store, "crm", now=now) == 0.0  # unpaced destinations never wait


def test_whatsapp_never_exceeds_its_rate_measured_at_the_sandbox(hub, monkeypatch):
    monkeypatch.setattr(limits, "LIMITS", {**limits.LIMITS, "whatsapp": limits.DestinationLimit(2, per_second=4.0)})
    env = hub.sb.env()
    zapi = ZApiResource(base_url=env["ZAPI_BASE_URL"], instance_id=env["ZAPI_INSTANCE_ID"],
                        token=env["ZAPI_TOKEN"], client_token=env["ZAPI_CLIENT_TOKEN"])
    outcomes = []
    rows = [whatsapp_outbox.outbox_enqueue(hub.store, event_id=9000 + n, action="whatsapp_test",
                                           phone=f"55119666{n:05d}", kind="text", body={"message": "Olá"})
            for n in range(8)]
    threads = [threading.Thread(target=lambda r=row: outcomes.append(whatsapp_outbox.deliver(hub.store, zapi, r)))
               for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o["status"] for o in outcomes] == ["succeeded"] * 8, outcomes
    times = sorted(m["received_ts"] for m in hub.sb.zapi.sent() if m["phone"].startswith("55119666"))
    assert len(times) == 8
    worst = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert worst <= 4 + 1, f"{worst} messages within one second at a limit of 4/s"  # +1: slot edges
    assert times[-1] - times[0] >= (8 - 1) / 4.0 * 0.9


def test_every_action_is_in_its_destinations_pool_and_the_cli_writes_the_limits(tmp_path, monkeypatch):
    for job in EVENT_JOBS.values():
        for node in job.graph.node_defs:
            destination = node.tags.get("carinho/destination")
            assert node.pool == limits.pool_of(destination), (job.name, node.name)
    home = tmp_path / "dagster_home"
    prepare_dagster_home(home, postgres=False, celery=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    done = CliRunner().invoke(main, ["instance", "limits"])
    assert done.exit_code == 0, done.output
    assert "destination-crm=4" in done.output
    with DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info("destination-whatsapp")
        assert info.slot_count == limits.LIMITS["whatsapp"].concurrency
