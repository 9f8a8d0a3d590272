"""Erasure of a person (LGPD art. 18; issue 16) in the event store: idempotent, audited
without the personal data, pending work cancelled, bad input changes nothing."""

from __future__ import annotations

import sqlalchemy as sa

from carinho_pipelines.events import ledger
from carinho_pipelines.kernel.catalogue import CATALOGUE
from carinho_pipelines.store.tables import audit_log, event_actions, event_person_keys, events, metadata

KEYS = "ops:erase-ops-key:privacy:erase,events:read;reader:read-key:events:read"
ERASER = {"X-API-Key": "erase-ops-key"}
ANA = {"name": "Ana Lima", "phone": "(11) 98888-7777", "email": "Ana.Lima@Example.com"}
TRACES = ("5511988887777", "11988887777", "98888-7777", "ana.lima@example.com", "Ana.Lima@Example.com", "Ana Lima")


def _everything(store) -> str:
    """Every row of every table of the event store, as text."""
    with store.engine.connect() as conn:
        return "\n".join(str(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(sa.select(table)))


def _setup(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", KEYS)
    monkeypatch.setenv("CARINHO_PERSON_KEY_SECRET", "test-person-key-secret")
    ana = relay.post("/webhooks/site/lead", "site", json=ANA).json()["event_id"]
    ana_crm = relay.post("/webhooks/crm/client-registered", "crm", json={"id": 7, **ANA}).json()["event_id"]
    bia = relay.post("/webhooks/site/lead", "site", json={"name": "Bia Souza", "phone": "11977776666"}).json()["event_id"]
    # one of Ana's actions already went out; the others are pending
    ledger.record_outcome(relay.store, ana, "forward_crm", "succeeded", {"crm_id": 55, "name": "Ana Lima"}, "run-1")
    return ana, ana_crm, bia


def test_an_erasure_removes_the_person_everywhere_in_the_store_cancels_their_work_and_is_idempotent(relay, monkeypatch):
    ana, ana_crm, bia = _setup(relay, monkeypatch)
    assert any(t in _everything(relay.store) for t in TRACES)

    done = relay.http.post("/api/privacy/erase", json={"phone": "+55 (11) 98888-7777"}, headers=ERASER)
    assert done.status_code == 200, done.text
    erased = done.json()["erased"]
    assert erased["events"] == 2 and erased["cancelled_events"] == 2 and erased["cancelled_actions"] >= 2
    text = _everything(relay.store)
    assert [t for t in TRACES if t in text] == []
    for event_id in (ana, ana_crm):
        row = relay.store.get_event(event_id)
        assert row["payload"] is None and row["payload_purged_at"] is not None
        assert row["filtered_reason"] == "erased"  # never dispatched now
        assert row["event_type"] and row["received_at"]  # the row, type and timestamps stay
    with relay.store.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(event_actions.c.action, event_actions.c.status)
                                     .where(event_actions.c.event_id == ana)).all())
        assert statuses["forward_crm"] == "succeeded" and set(statuses.values()) <= {"succeeded", "erased"}
        assert len(statuses) > 1
        assert set(conn.execute(sa.select(event_person_keys.c.event_id)).scalars()) == {bia}
        [(action, target, detail)] = conn.execute(sa.select(audit_log.c.action, audit_log.c.target, audit_log.c.detail)
                                                  .where(audit_log.c.action == "privacy.erase")).all()
    assert target.startswith("phone:") and "988887777" not in target and detail["events"] == 2
    bia_row = relay.store.get_event(bia)
    assert bia_row["payload"]["name"] == "Bia Souza" and bia_row["filtered_reason"] is None
    # a later run of Ana's events skips every erased action (the ledger calls it done)
    for action in CATALOGUE["client.registered"].actions:
        assert ledger.get_action(relay.store, ana_crm, action.name).status in ledger.DONE

    again = relay.http.post("/api/privacy/erase", json={"phone": "11988887777"}, headers=ERASER)
    assert again.status_code == 200 and again.json()["erased"] == {
        "events": 0, "cancelled_events": 0, "cancelled_actions": 0, "outbox_rows": 0}
    # and the person is no longer found
    found = relay.http.get("/api/events", params={"phone": "11988887777"}, headers=ERASER)
    assert found.status_code == 200 and found.json()["data"] == []


def test_bad_erasure_requests_are_refused_and_change_nothing(relay, monkeypatch):
    _setup(relay, monkeypatch)
    before = _everything(relay.store)
    for body, status in [({}, 422), ({"phone": "11988887777", "email": "a@b.com"}, 422), ({"phone": "12ab"}, 422),
                         ({"cpf": "123"}, 422), ({"name": "Ana Lima"}, 422), ({"email": "not-an-email"}, 422)]:
        resp = relay.http.post("/api/privacy/erase", json=body, headers=ERASER)
        assert resp.status_code == status, (body, resp.text)
        assert resp.json()["error"] == "validation_failed"
    assert relay.http.post("/api/privacy/erase", json={"phone": "11988887777"}).status_code == 401
    denied = relay.http.post("/api/privacy/erase", json={"phone": "11988887777"}, headers={"X-API-Key": "read-key"})
    assert denied.status_code == 403 and denied.json()["scope"] == "privacy:erase"
    assert relay.http.post("/api/privacy/erase", content=b"phone=1", headers={**ERASER, "Content-Type": "text/plain"}
                           ).status_code == 415
    assert _everything(relay.store) == before
    with relay.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 3
