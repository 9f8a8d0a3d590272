"""The destinations control (issue 16): pause and resume over HTTP, audit-logged, shown
in /health/detailed, /status and /metrics; bad input is a clear 4xx that changes nothing."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from carinho_pipelines.store import utcnow
from carinho_pipelines.store.tables import audit_log, destination_pauses

KEYS = "ops:pause-key:destinations:write,status:read;reader:reader-key:status:read"
OPS = {"X-API-Key": "pause-key"}


def _pauses(relay):
    with relay.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(destination_pauses))]


def test_pause_and_resume_a_destination_and_see_it_everywhere(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", KEYS)
    until = (utcnow() + dt.timedelta(hours=1)).isoformat()
    paused = relay.http.post("/api/destinations/crm/pause", json={"reason": "CRM maintenance", "until": until},
                             headers=OPS)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"]["reason"] == "CRM maintenance" and paused.json()["paused"]["by"] == "ops"
    listed = {d["destination"]: d for d in relay.http.get("/api/destinations", headers=OPS).json()["destinations"]}
    assert listed["crm"]["paused"]["until"] and listed["financeiro"]["paused"] is None
    health = relay.http.get("/health/detailed").json()
    assert "crm" in health["paused"] and not any(d.startswith("pause") for d in health["degraded"])
    assert 'carinho_destination_paused{destination="crm"} 1.0' in relay.http.get("/metrics").text
    resumed = relay.http.post("/api/destinations/crm/resume", headers=OPS)
    assert resumed.status_code == 200 and resumed.json() == {"destination": "crm", "resumed": True}
    assert relay.http.post("/api/destinations/crm/resume", headers=OPS).json()["resumed"] is False
    assert _pauses(relay) == []
    assert "carinho_destination_paused{" not in relay.http.get("/metrics").text
    with relay.store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions == ["destination.pause", "destination.resume", "destination.resume"]


def test_bad_pause_requests_are_refused_and_change_nothing(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", KEYS)
    now = utcnow()
    cases = [
        ("/api/destinations/nowhere/pause", {"reason": "x"}, 404),
        ("/api/destinations/crm/pause", {}, 422),
        ("/api/destinations/crm/pause", {"reason": "   "}, 422),
        ("/api/destinations/crm/pause", {"reason": "x", "until": (now - dt.timedelta(minutes=1)).isoformat()}, 422),
        ("/api/destinations/crm/pause", {"reason": "x", "until": (now + dt.timedelta(days=8)).isoformat()}, 422),
        ("/api/destinations/crm/pause", {"reason": "x", "until": "tomorrow"}, 422),
        ("/api/destinations/crm/pause", {"reason": "x", "extra": 1}, 422),
        ("/api/destinations/nowhere/resume", None, 404),
    ]
    for path, body, status in cases:
        resp = relay.http.post(path, json=body, headers=OPS) if body is not None else relay.http.post(path, headers=OPS)
        assert resp.status_code == status, (path, body, resp.text)
    denied = relay.http.post("/api/destinations/crm/pause", json={"reason": "x"}, headers={"X-API-Key": "reader-key"})
    assert denied.status_code == 403 and denied.json()["scope"] == "destinations:write"
    assert relay.http.post("/api/destinations/crm/pause", json={"reason": "x"}).status_code == 401
    assert _pauses(relay) == []
    with relay.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one() == 0


def test_the_ops_cli_pauses_lists_and_resumes_over_http(relay, monkeypatch):
    from click.testing import CliRunner

    from carinho_pipelines.cli import main

    monkeypatch.setenv("CARINHO_API_KEYS", KEYS + ";eraser:erase-key:privacy:erase")
    env = {"CARINHO_HUB_URL": relay.url, "CARINHO_API_KEY": "pause-key"}
    runner = CliRunner()
    paused = runner.invoke(main, ["destination", "pause", "financeiro", "--reason", "closing the month"], env=env)
    assert paused.exit_code == 0, paused.output
    assert "financeiro: paused (closing the month)" in paused.output
    listed = runner.invoke(main, ["destination", "list"], env=env)
    assert listed.exit_code == 0 and "closing the month" in listed.output
    unknown = runner.invoke(main, ["destination", "pause", "nowhere", "--reason", "x"], env=env)
    assert unknown.exit_code == 1 and "HTTP 404" in unknown.output
    resumed = runner.invoke(main, ["destination", "resume", "financeiro"], env=env)
    assert resumed.exit_code == 0 and "financeiro: resumed" in resumed.output
    both = runner.invoke(main, ["privacy", "erase", "--phone", "11988887777", "--email", "a@b.com"],
                         env={**env, "CARINHO_API_KEY": "erase-key"})
    assert both.exit_code == 2 and "exactly one" in both.output
    assert _pauses(relay) == []
