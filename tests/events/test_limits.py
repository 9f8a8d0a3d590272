"""Per-destination pacing and concurrency (issue 16): one table; Z-API's rate holds,
measured from the sandbox's recorded call times; each destination's actions are in its
Dagster concurrency pool, whose limit ``carinho instance limits`` writes."""

from __future__ import annotations

import threading

import pytest

from click.testing import CliRunner
from dagster import DagsterInstance

from carinho_pipelines.cli import main
from carinho_pipelines.destinations import limits
from carinho_pipelines.events import ledger, whatsapp_outbox
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.platform.instance import prepare_dagster_home
from carinho_pipelines.resources import ZApiResource
from tests.support import wait_for


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
    interval = limits.PACE_GUARD / limits.LIMITS["whatsapp"].per_second
    assert sorted(round(w / interval) for w in waits) == list(range(8))  # no two share a slot
    assert limits.reserve(hub.store, "crm", now=now) == 0.0  # unpaced destinations never wait


def test_a_call_whose_slot_is_too_far_away_books_nothing_so_a_lead_still_gets_the_next_one(hub):
    now = 2_000_000.0
    interval = limits.PACE_GUARD / limits.LIMITS["whatsapp"].per_second
    ahead = limits.pace_ahead("notifications")
    booked = [limits.reserve(hub.store, "whatsapp", now=now, ahead=ahead) for _ in range(20)]
    fitting = [w for w in booked if w is not None]
    assert fitting == [pytest.approx(n * interval) for n in range(len(fitting))]
    assert all(w <= ahead for w in fitting) and booked[len(fitting):] == [None] * (20 - len(fitting))
    # the held calls booked nothing: a lead's auto-reply gets the very next slot
    lead = limits.reserve(hub.store, "whatsapp", now=now, ahead=limits.pace_ahead("integrations-high"))
    assert lead == pytest.approx(len(fitting) * interval)
    assert limits.pace_ahead("integrations-high") > ahead == limits.PACE_AHEAD_SECONDS


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
    assert worst <= 4, f"{worst} messages within one second at a limit of 4/s"
    assert times[-1] - times[0] >= (8 - 1) / 4.0


def test_every_action_has_its_destinations_pool_and_the_cli_writes_the_limits(tmp_path, monkeypatch):
    for job in EVENT_JOBS.values():
        for node in job.graph.node_defs:
            destination = node.tags.get("carinho/destination")
            # the op claims the pool's slot itself (destinations/slots.py), so Dagster's
            # executor must not claim it a second time
            assert node.pool is None and (limits.pool_of(destination) is not None or destination == "hub"), node.name
    home = tmp_path / "dagster_home"
    prepare_dagster_home(home, postgres=False, celery=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    done = CliRunner().invoke(main, ["instance", "limits"])
    assert done.exit_code == 0, done.output
    assert "destination-crm=4" in done.output
    with DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info("destination-whatsapp")
        assert info.slot_count == limits.LIMITS["whatsapp"].concurrency


def test_an_action_waits_for_its_destinations_slot_in_a_short_line_and_calls_once_it_is_assigned(
        hub, pooled_instance, monkeypatch):
    """The pool's one CRM slot is held by another run, nobody else waits: the lead's CRM
    call waits for it (it does not call beside the holder), gets it when it is freed, and
    frees it after the call."""
    monkeypatch.setattr(limits, "SLOT_WAIT_SECONDS", 120.0)
    storage = pooled_instance.event_log_storage
    storage.set_concurrency_slots("destination-crm", 1)
    assert storage.claim_concurrency_slot("destination-crm", "other-run", "forward_crm", 0).is_claimed
    eid = hub.event("lead.created", "site", {"name": "Duda", "phone": "5511977774444"})
    calls_while_held: list[int] = []

    def free_when_the_lead_waits():
        wait_for(lambda: storage.get_concurrency_info("destination-crm").pending_step_count == 1, timeout=60,
                 what="the lead's claim waiting", interval=0.02)
        calls_while_held.append(len(hub.calls("crm", "POST", "/api/v1/leads")))
        storage.free_concurrency_slot_for_step("other-run", "forward_crm")

    freer = threading.Thread(target=free_when_the_lead_waits)
    freer.start()
    result = hub.run(eid)
    freer.join()
    assert result.success and calls_while_held == [0]
    assert ledger.get_action(hub.store, eid, "crm_upsert_lead").status == "succeeded"
    assert len(hub.calls("crm", "POST", "/api/v1/leads")) == 1
    info = storage.get_concurrency_info("destination-crm")
    assert info.active_slot_count == 0 and info.pending_step_count == 0
