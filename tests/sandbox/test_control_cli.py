"""The control server and the ``carinho sandbox`` commands drive a running sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from carinho_sandbox import Sandbox
from carinho_sandbox.cli import sandbox as sandbox_cli

REPO = Path(__file__).resolve().parents[2]


def cli(sb: Sandbox, *args: str) -> str:
    result = CliRunner().invoke(sandbox_cli, [*args, "--control-url", sb.control_url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_control_server_sets_and_clears_faults(sb: Sandbox, api) -> None:
    control = httpx.Client(base_url=sb.control_url)
    answer = control.post("/systems/crm/faults", json={"status": 503, "count": 2, "retry_after": 1}).json()
    assert answer["faults"]["fail_status"] == 503 and answer["faults"]["fail_count"] == 2
    failing = api("crm").get("/api/v1/leads", params={"phone": "1"})
    assert failing.status_code == 503 and failing.headers["retry-after"] == "1"
    control.delete("/systems/crm/faults")
    assert api("crm").get("/api/v1/leads", params={"phone": "1"}).status_code == 200
    assert control.post("/systems/nope/faults", json={"status": 500}).status_code == 404
    assert control.post("/systems/crm/faults", json={}).status_code == 422


def test_control_server_down_and_up_while_the_port_is_closed(sb: Sandbox, api) -> None:
    control = httpx.Client(base_url=sb.control_url)
    control.post("/systems/financeiro/faults", json={"down": True})
    with pytest.raises(httpx.ConnectError):
        api("financeiro").post("/api/billing/setup", json={"crm_client_id": 1})
    assert control.get("/systems").json()["systems"]["financeiro"]["up"] is False
    control.post("/systems/financeiro/faults", json={"down": False})
    assert api("financeiro").post("/api/billing/setup", json={"crm_client_id": 1}).status_code == 201


def test_control_server_calls_seed_reset_and_zapi(sb: Sandbox, api, hub) -> None:
    control = httpx.Client(base_url=sb.control_url)
    seeded = control.post("/seed").json()["seeded"]
    assert seeded["crm"]["pending_schedules"] == 2
    api("crm").get("/api/v1/sync/pending-schedules")
    [call] = control.get("/systems/crm/calls").json()["calls"]
    assert call["path"] == "/api/v1/sync/pending-schedules" and call["status"] == 200
    assert control.get("/env").json()["CARINHO_CRM_URL"] == sb.url("crm")

    control.put("/zapi/webhook", json={"url": hub.url + "/webhooks/whatsapp"})
    assert control.post("/zapi/disconnect").json() == {"connected": False}
    emitted = control.post("/zapi/emit/received", json={"phone": "5511988887777", "text": "Oi"}).json()
    assert emitted["webhook_status"] == 202
    assert control.post("/zapi/connect").json() == {"connected": True}
    assert [r["json"]["type"] for r in hub.received()] == ["DisconnectedCallback", "ReceivedCallback", "ConnectedCallback"]

    control.post("/reset")
    assert sb.records("crm", "pending_schedules") == [] and sb.calls("crm") == []


def test_cli_fault_calls_reset_and_zapi(sb: Sandbox, api) -> None:
    assert "next 3 call(s) → 429, Retry-After 5" in cli(sb, "fault", "crm", "--status", "429", "--count", "3",
                                                        "--retry-after", "5")
    assert api("crm").get("/api/v1/leads", params={"phone": "5511988887777"}).status_code == 429
    assert "DOWN" in cli(sb, "fault", "marketing", "--down")
    assert not sb.is_up("marketing")
    assert "marketing: up" in cli(sb, "fault", "marketing", "--up")
    assert "latency 2.5s" in cli(sb, "fault", "operacao", "--latency", "2.5")
    assert "no scheduled failures; latency 0.0s" in cli(sb, "fault", "operacao", "--clear")

    out = cli(sb, "calls", "crm")
    assert "GET    /api/v1/leads → 429  (injected fault)" in out
    assert "5511988887777" not in out  # phones masked (in the query they are not shown at all)

    cli(sb, "seed")
    api("crm", **{"Idempotency-Key": "k"}).post("/api/v1/leads", json={"name": "Ana Souza", "phone": "5511988887777"})
    out = cli(sb, "calls", "crm")
    assert "[Idempotency-Key k]" in out
    assert "Ana Souza" not in out and "5511988887777" not in out and "55119****7777" in out

    assert "disconnected" in cli(sb, "zapi", "disconnect")
    assert sb.zapi.connected is False
    assert "connected" in cli(sb, "zapi", "connect")
    assert sb.zapi.connected is True

    assert "reset" in cli(sb, "reset")
    assert sb.calls("crm") == []


def test_cli_redacts_the_zapi_token_in_paths(sb: Sandbox, zapi) -> None:
    zapi.get("/status")
    out = cli(sb, "calls", "zapi")
    assert sb.zapi_state.token not in out and "/token/***/status" in out
    assert "sandbox-client-token" not in out


def test_cli_reports_an_unreachable_control_server() -> None:
    result = CliRunner().invoke(sandbox_cli, ["reset", "--control-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "unreachable" in result.output


def test_serve_prints_the_env_and_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "carinho_pipelines.cli", "sandbox", "serve", "--base-port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        exports = dict(l.removeprefix("export ").strip().split("=", 1) for l in lines if l.startswith("export "))
        assert exports["CARINHO_CRM_TOKEN"] == "sandbox-crm-token"
        assert exports["ZAPI_INSTANCE_ID"] == "SANDBOXINSTANCE0000000000000001"
        assert {f"CARINHO_{s.upper()}_URL" for s in ("crm", "operacao", "financeiro", "cuidadores", "atendimento",
                                                     "marketing", "site", "documentos")} <= exports.keys()
        # seeded by default: the sync has work on the first run
        feed = httpx.get(exports["CARINHO_CRM_URL"] + "/api/v1/sync/pending-schedules",
                         headers={"Authorization": "Bearer sandbox-crm-token"}).json()
        assert len(feed["data"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, "".join(lines) + out
    assert "sandbox stopped" in out
