"""Injected faults behave like the incidents they stand for."""

from __future__ import annotations

import time

import httpx
import pytest

from carinho_sandbox import Sandbox


def test_next_n_calls_fail_then_success(sb: Sandbox, api) -> None:
    sb.fail("crm", status=500, count=2)
    crm = api("crm")
    statuses = [crm.get("/api/v1/leads", params={"phone": "1"}).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert [c["status"] for c in sb.calls("crm")] == [500, 500, 200]
    assert [c.get("fault", False) for c in sb.calls("crm")] == [True, True, False]


def test_failed_write_creates_nothing(sb: Sandbox, api) -> None:
    sb.fail("crm", status=503, count=1)
    assert api("crm").post("/api/v1/leads", json={"name": "A", "phone": "11988887777"}).status_code == 503
    assert sb.records("crm", "leads") == []


def test_429_and_503_carry_retry_after(sb: Sandbox, api) -> None:
    sb.fail("marketing", status=429, count=1, retry_after=7)
    answer = api("marketing").get("/api/v1/campaigns/find-by-utm", params={"utm_source": "x"})
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    sb.fail("marketing", status=503, count=1, retry_after=2)
    assert api("marketing").get("/api/v1/campaigns/find-by-utm", params={"utm_source": "x"}).headers["retry-after"] == "2"


def test_a_4xx_fault(sb: Sandbox, api) -> None:
    sb.fail("operacao", status=409, count=1)
    assert api("operacao").post("/api/v1/schedules", json={}).status_code == 409


def test_latency_slows_every_call(sb: Sandbox, api) -> None:
    sb.latency("cuidadores", 0.3)
    started = time.monotonic()
    assert api("cuidadores").get("/api/v1/sync/pending-updates").status_code == 200
    assert time.monotonic() - started >= 0.3
    sb.clear_faults("cuidadores")
    started = time.monotonic()
    api("cuidadores").get("/api/v1/sync/pending-updates")
    assert time.monotonic() - started < 0.3


def test_latency_past_the_client_timeout_is_a_hang(sb: Sandbox, api) -> None:
    sb.latency("financeiro", 3)
    with pytest.raises(httpx.ReadTimeout):
        api("financeiro", timeout=0.3).post("/api/billing/setup", json={"crm_client_id": 1})
    assert sb.calls("financeiro")[-1]["path"] == "/api/billing/setup"


def test_down_refuses_connections_then_up_on_the_same_port(sb: Sandbox, api) -> None:
    port = sb.port("operacao")
    ops = api("operacao")
    assert ops.get("/api/v1/services/completed", params={"date": "2026-01-01"}).status_code == 200
    sb.down("operacao")
    assert sb.faults("operacao")["down"] is True
    with pytest.raises(httpx.ConnectError):
        ops.get("/api/v1/services/completed", params={"date": "2026-01-01"})
    # the other systems are unaffected
    assert api("crm").get("/api/v1/leads", params={"phone": "1"}).status_code == 200
    sb.up("operacao")
    assert sb.port("operacao") == port
    assert ops.get("/api/v1/services/completed", params={"date": "2026-01-01"}).status_code == 200


def test_state_survives_down_and_up(sb: Sandbox, api) -> None:
    api("crm").post("/api/v1/clients", json={"name": "Ana"})
    sb.down("crm")
    sb.up("crm")
    assert len(sb.records("crm", "clients")) == 1


def test_reset_clears_faults_state_and_calls_and_brings_systems_up(sb: Sandbox, api) -> None:
    api("crm").post("/api/v1/clients", json={"name": "Ana"})
    sb.fail("crm", 503, 5)
    sb.latency("crm", 1)
    sb.down("site")
    sb.reset()
    assert sb.calls("crm") == [] and sb.records("crm", "clients") == []
    assert sb.is_up("site")
    started = time.monotonic()
    assert api("crm").get("/api/v1/leads", params={"phone": "1"}).status_code == 200
    assert time.monotonic() - started < 1


def test_zapi_can_fail_sends(sb: Sandbox, zapi) -> None:
    sb.fail("zapi", status=500, count=1)
    failed = zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"})
    assert failed.status_code == 500 and "error" in failed.json()
    assert zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"}).status_code == 200
    assert len(sb.zapi.sent()) == 1
