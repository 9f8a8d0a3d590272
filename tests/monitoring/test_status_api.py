"""GET /status and GET /metrics on the real relay (uvicorn), reading the same store and
Dagster instance as the sensors; /metrics parsed with the Prometheus client's parser."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from carinho_pipelines.store import apikeys
from relay import runs, status_api
from relay.app import create_app
from carinho_pipelines.store import EventStore
from tests.support import ServerThread

KEYS: dict[str, str] = {}


@pytest.fixture
def relay(mon, monkeypatch, tmp_path) -> Iterator[httpx.Client]:
    # stored keys (`carinho apikey create`): CARINHO_API_KEYS cannot carry scopes with a
    # colon (its entries are split on ":"), so only "*" works there today
    monkeypatch.delenv("CARINHO_API_KEYS", raising=False)
    KEYS["status"] = apikeys.create_key(mon.store, "ops", ["status:read"])
    KEYS["other"] = apikeys.create_key(mon.store, "other", ["events:read"])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "_instance", mon.instance)  # the relay reads the sensors' instance
    app = create_app(EventStore(mon.url))
    paths = {getattr(r, "path", None) for r in app.router.routes}
    if "/status" not in paths:  # until relay.app lists them
        app.router.routes += [Route("/status", status_api.status, methods=["GET"]),
                              Route("/metrics", status_api.metrics, methods=["GET"])]
    server = ServerThread(app).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def families(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_status_needs_a_key_with_status_read(relay):
    assert relay.get("/status").status_code == 401
    assert relay.get("/status", headers={"X-API-Key": KEYS["other"]}).status_code == 403
    assert relay.get("/status", headers={"X-API-Key": KEYS["status"]}).status_code == 200


def test_status_and_metrics_report_the_same_levels(mon, relay):
    for _ in range(12):
        mon.failed_run()
    for i in range(6):
        mon.run_event(mon.event(queue="integrations-high", received_ago=8), queue="integrations-high")
    mon.events(3, queue="notifications")

    body = relay.get("/status", headers={"Authorization": f"Bearer {KEYS['status']}"}).json()
    assert body["status"] == "alert" and body["dagster"] == "ok"
    assert body["metrics"]["dlq_open"] | {"label": None} == {
        "label": None, "value": 12, "level": "alert", "alert": 10, "critical": 50, "unit": "count"}
    assert body["metrics"]["events_pending"]["value"] == 3 and body["metrics"]["events_pending"]["level"] == "ok"
    assert body["metrics"]["error_rate"]["value"] == 0.0 and body["metrics"]["error_rate"]["samples"] == 6
    high = body["queues"]["integrations-high"]
    assert high["sla_seconds"] == 5 and high["processing_seconds"]["samples"] == 6
    assert high["processing_seconds"]["p95"] >= 8 and high["level"] == "alert"  # 8 s > 5 s, < 15 s
    assert body["queues"]["notifications"]["pending"] == 3
    assert body["alerts"] == []  # nothing announced yet: the sensor announces, /status only reads

    resp = relay.get("/metrics")  # open: aggregate numbers only
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    m = families(resp.text)
    assert m["carinho_dlq_open"][()] == 12
    assert m["carinho_events_pending"][()] == 3
    assert m["carinho_error_rate_ratio"][()] == 0.0
    assert m["carinho_metric_level"][(("metric", "dlq_open"),)] == 1
    assert m["carinho_metric_threshold"][(("level", "critical"), ("metric", "error_rate"))] == 0.15
    assert m["carinho_queue_sla_seconds"][(("queue", "integrations-high"),)] == 5
    assert m["carinho_queue_processing_seconds"][(("quantile", "0.95"), ("queue", "integrations-high"))] >= 8
    assert m["carinho_queue_pending"][(("queue", "notifications"),)] == 3
    assert m["carinho_queue_level"][(("queue", "integrations-high"),)] == 1
    assert m["carinho_status_level"][()] == 1 and m["carinho_dagster_up"][()] == 1
    assert "5511" not in resp.text and "@" not in resp.text


def test_announced_alerts_and_whatsapp_show_in_status_and_metrics(mon, relay):
    from carinho_pipelines.monitoring import whatsapp_health
    from carinho_pipelines.monitoring.alert_sensor import check_thresholds
    from carinho_pipelines.store import utcnow
    import datetime as dt

    for _ in range(11):
        mon.failed_run()
    check_thresholds(mon.store, mon.instance, mon.email, utcnow(), sync_names=())
    mon.sb.zapi.disconnect()
    whatsapp_health.check(mon.store, mon.zapi, mon.email, utcnow())
    whatsapp_health.check(mon.store, mon.zapi, mon.email, utcnow() + dt.timedelta(minutes=16))
    mon.sb.zapi.connect()

    body = relay.get("/status", headers={"X-API-Key": KEYS["status"]}).json()
    assert [(a["key"], a["escalation_level"]) for a in body["alerts"]] == [("metric:dlq_open", 1), ("whatsapp", 1)]
    assert body["whatsapp"]["connected"] is False and body["whatsapp"]["alerted"] is True
    m = families(relay.get("/metrics").text)
    assert m["carinho_whatsapp_connected"][()] == 0
    assert m["carinho_alert_escalation_level"][(("alert", "whatsapp"),)] == 1


def test_metrics_can_require_a_key(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_METRICS_REQUIRE_KEY", "true")
    assert relay.get("/metrics").status_code == 401
    assert relay.get("/metrics", headers={"X-API-Key": KEYS["status"]}).status_code == 200


def test_without_dagster_the_store_numbers_are_still_served(mon, relay, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME")
    mon.events(2)
    body = relay.get("/status", headers={"X-API-Key": KEYS["status"]}).json()
    assert body["dagster"] == "unavailable" and body["metrics"]["dlq_open"]["value"] is None
    assert body["metrics"]["events_pending"]["not_dispatched"] == 2
    m = families(relay.get("/metrics").text)
    assert m["carinho_dagster_up"][()] == 0 and "carinho_dlq_open" not in m
