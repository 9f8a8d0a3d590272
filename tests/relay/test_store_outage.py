"""Store down → 503 with Retry-After and nothing acknowledged; back → accepted again,
without restarting the relay."""

import sqlalchemy as sa

from carinho_pipelines.store import EventStore
from tests.relay.conftest import Relay
from tests.support import TcpProxy


def test_relay_answers_503_while_postgres_is_unreachable_and_recovers_by_itself(pg_database, hub_env):
    from carinho_pipelines.store.migrate import upgrade

    url = sa.engine.make_url(pg_database())
    upgrade(url.render_as_string(hide_password=False))
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    relay = Relay(EventStore(proxied))
    try:
        lead = {"name": "Ana", "phone": "11988887777"}
        assert relay.post("/webhooks/site/lead", "site", json=lead).status_code == 202
        proxy.cut()
        down = relay.post("/webhooks/site/lead", "site", json={**lead, "message": "during the outage"})
        assert down.status_code == 503
        assert down.headers["Retry-After"] == "5"
        assert down.json()["error"] == "store_unavailable"
        health = relay.http.get("/health/detailed")
        assert health.status_code == 503 and health.json()["checks"]["store"]["status"] == "error"
        assert relay.http.get("/health").status_code == 200  # liveness is not readiness
        proxy.restore()
        again = relay.post("/webhooks/site/lead", "site", json={**lead, "message": "during the outage"})
        assert again.status_code == 202 and again.json()["duplicate"] is False
        assert relay.http.get("/health/detailed").status_code == 200
        direct = EventStore(url.render_as_string(hide_password=False))
        with direct.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 2
        direct.engine.dispose()
    finally:
        relay.close()
        proxy.cut()


def test_unmigrated_store_is_503_not_500(tmp_path, hub_env):
    relay = Relay(EventStore(f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        resp = relay.post("/webhooks/site/lead", "site", json={"phone": "11988887777"})
        assert resp.status_code == 503
    finally:
        relay.close()


def test_readiness_follows_the_store_only_and_the_operations_keys_need_it(pg_database, hub_env, monkeypatch):
    """``/health/ready`` is the probe (a plain GET): 200 while the store answers, 503 with
    Retry-After while it does not, whatever Dagster or Z-API do; an operations request
    whose key cannot be checked is a 503, not a 401."""
    from carinho_pipelines.store.migrate import upgrade

    monkeypatch.setenv("CARINHO_API_KEYS", "ops:ops-key:*")
    monkeypatch.setenv("CARINHO_DAGSTER_GRAPHQL_URL", "http://127.0.0.1:9/graphql")  # Dagster is down
    url = sa.engine.make_url(pg_database())
    upgrade(url.render_as_string(hide_password=False))
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    relay = Relay(EventStore(proxied))
    try:
        ready = relay.http.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["store"]["status"] == "ok"
        proxy.cut()
        down = relay.http.get("/health/ready")
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert down.json()["status"] == "unavailable"
        unknown = relay.http.get("/api/events", headers={"X-API-Key": "not-a-configured-key"})
        assert unknown.status_code == 503 and unknown.json()["error"] == "store_unavailable"
        # a configured key needs no store; what it asks for does: a 503 to retry, not a 500
        for path in ("/api/events", "/api/events/1"):
            read = relay.http.get(path, headers={"X-API-Key": "ops-key"})
            assert read.status_code == 503, (path, read.text)
            assert read.json()["error"] == "store_unavailable" and read.headers["Retry-After"] == "5"
        proxy.restore()
        assert relay.http.get("/health/ready").status_code == 200
        assert relay.http.get("/api/events", headers={"X-API-Key": "not-a-configured-key"}).status_code == 401
    finally:
        relay.close()
        proxy.cut()
