"""Search by person (issue 16): keyed hashes of phone, e-mail and CPF stored at ingest,
exact matches through them, masked answers, nothing personal kept in clear."""

from __future__ import annotations

import sqlalchemy as sa

from carinho_pipelines.store.tables import event_person_keys, events

KEY = {"X-API-Key": "search-ops-key"}


def _search(relay, **params):
    return relay.http.get("/api/events", params=params, headers=KEY)


def test_a_person_is_found_by_phone_email_or_cpf_in_any_format_and_only_their_events(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", "ops:search-ops-key:events:read")
    monkeypatch.setenv("CARINHO_PERSON_KEY_SECRET", "test-person-key-secret")
    ana = relay.post("/webhooks/site/lead", "site", json={"name": "Ana Lima", "phone": "(11) 98888-7777",
                                                          "email": "Ana.Lima@Example.com"}).json()["event_id"]
    ana_again = relay.post("/webhooks/crm/client-registered", "crm", json={
        "id": 7, "name": "Ana Lima", "phone": "5511988887777", "cpf": "123.456.789-09"}).json()["event_id"]
    bia = relay.post("/webhooks/site/lead", "site", json={"name": "Bia", "phone": "11977776666"}).json()["event_id"]

    for params, expected in [({"phone": "+55 11 98888-7777"}, [ana_again, ana]), ({"phone": "11988887777"}, [ana_again, ana]),
                             ({"email": "ana.lima@example.com"}, [ana]), ({"cpf": "12345678909"}, [ana_again]),
                             ({"phone": "11977776666"}, [bia]), ({"phone": "11955554444"}, [])]:
        found = _search(relay, **params)
        assert found.status_code == 200, found.text
        assert [e["id"] for e in found.json()["data"]] == expected, params
    # combined with the other filters; and the answer is the masked summary
    only_leads = _search(relay, phone="11988887777", type="lead.created").json()["data"]
    assert [e["id"] for e in only_leads] == [ana]
    assert "98888-7777" not in str(only_leads) and "988887777" not in str(only_leads)
    # what is stored: digests, never the phone, e-mail or CPF themselves
    with relay.store.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(event_person_keys.c.kind, event_person_keys.c.digest))]
    assert {k for k, _ in stored} == {"phone", "email", "cpf"} and all(len(d) == 64 for _, d in stored)
    assert not any(v in d for _, d in stored for v in ("5511988887777", "ana.lima", "12345678909"))


def test_bad_person_queries_are_422_and_without_the_secret_search_is_off(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", "ops:search-ops-key:events:read")
    monkeypatch.delenv("CARINHO_PERSON_KEY_SECRET", raising=False)
    bad = _search(relay, phone="12ab", email="not-an-email", cpf="123")
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} == {"phone", "email", "cpf"}
    relay.post("/webhooks/site/lead", "site", json={"name": "Rui", "phone": "11966665555"})
    off = _search(relay, phone="11966665555")
    assert off.status_code == 503 and off.json()["error"] == "person_search_off"
    with relay.store.engine.connect() as conn:  # nothing was hashed without the secret
        assert conn.execute(sa.select(sa.func.count()).select_from(event_person_keys)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 1
