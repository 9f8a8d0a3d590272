"""POST /api/dlq/recover refuses bad windows with a clear 422 before touching anything."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from carinho_pipelines.store import utcnow
from carinho_pipelines.store.tables import audit_log

OPS = {"X-API-Key": "recover-key"}


def test_bad_recover_windows_are_422_and_change_nothing(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", "ops:recover-key:dlq:write;reader:read-key:dlq:read")
    now = utcnow()
    iso = lambda t: t.isoformat()  # noqa: E731
    cases = [
        ({}, {"from", "to"}),
        ({"from": iso(now), "to": iso(now - dt.timedelta(minutes=5))}, {"to"}),  # to before from
        ({"from": iso(now - dt.timedelta(days=40)), "to": iso(now)}, {"to"}),  # over 31 days
        ({"from": "yesterday", "to": iso(now)}, {"from"}),
        ({"from": iso(now - dt.timedelta(hours=1)), "to": iso(now), "destination": "nowhere"}, {"destination"}),
        ({"from": iso(now - dt.timedelta(hours=1)), "to": iso(now), "event_type": "no.such"}, {"event_type"}),
        ({"from": iso(now - dt.timedelta(hours=1)), "to": iso(now), "error_class": "weird"}, {"error_class"}),
    ]
    for body, fields in cases:
        resp = relay.http.post("/api/dlq/recover", json=body, headers=OPS)
        assert resp.status_code == 422, (body, resp.text)
        assert {f["field"] for f in resp.json()["fields"]} == fields, body
    assert relay.http.post("/api/dlq/recover", json={"from": iso(now), "to": iso(now)}).status_code == 401
    denied = relay.http.post("/api/dlq/recover", json={"from": iso(now - dt.timedelta(hours=1)), "to": iso(now)},
                             headers={"X-API-Key": "read-key"})
    assert denied.status_code == 403 and denied.json()["scope"] == "dlq:write"
    with relay.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one() == 0
