"""Search and erasure by person on the real stack (daemon, webserver, sandbox): after an
erasure the person's phone, e-mail and name are in no table of the event store and in
nothing the Dagster instance keeps (runs, tags, event logs, materializations)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.e2e.conftest import API_KEY

#: a person of this test only (the session's other tests use other phones)
PERSON = {"name": "Jussara Prado", "phone": "(21) 99123-4567", "email": "Jussara.Prado@Example.org",
          "utm_source": "google"}
TRACES = ("5521991234567", "21991234567", "99123-4567", "991234567", "jussara.prado@example.org",
          "Jussara.Prado@Example.org", "Jussara Prado", "Jussara", "Prado")


def _database_text(url: str) -> str:
    """Every row of every table of a PostgreSQL database, as text."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).scalars().all()
            return "\n".join(row for name in tables
                             for row in conn.execute(sa.text(f'SELECT CAST(t AS text) FROM "{name}" t')).scalars())
    finally:
        engine.dispose()


def test_a_person_found_by_phone_then_erased_leaves_no_trace_in_the_store_or_in_dagster(stack):
    key = {"X-API-Key": API_KEY}
    event_id = stack.post("/webhooks/site/lead", "site", PERSON).json()["event_id"]
    assert stack.wait_status(event_id, {"succeeded", "failed"})["status"] == "succeeded"
    found = stack.http.get("/api/events", params={"phone": "21991234567"}, headers=key).json()["data"]
    assert [e["id"] for e in found] == [event_id]
    # the person is in the store now (the payload); Dagster only ever saw masked forms
    assert any(t in _database_text(stack.env["CARINHO_DATABASE_URL"]) for t in TRACES)

    erased = stack.http.post("/api/privacy/erase", json={"email": "jussara.prado@example.org"}, headers=key)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["events"] >= 1
    store_text = _database_text(stack.env["CARINHO_DATABASE_URL"])
    dagster_text = _database_text(stack.env["DAGSTER_PG_URL"])
    assert [t for t in TRACES if t in store_text] == [], [r for r in store_text.splitlines() if "991234567" in r]
    assert [t for t in TRACES if t in dagster_text] == [], [r[:300] for r in dagster_text.splitlines() if "991234567" in r]
    assert stack.http.get("/api/events", params={"phone": "21991234567"}, headers=key).json()["data"] == []
    detail = stack.http.get(f"/api/events/{event_id}", headers=key).json()
    assert detail["payload"] is None and detail["payload_purged_at"]
