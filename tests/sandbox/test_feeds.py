"""Sync feeds return what was seeded, stop returning what was confirmed, and page."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carinho_sandbox import Sandbox
from carinho_sandbox.systems import (
    BILLING_FEED_FIELDS, CAREGIVER_FEED_FIELDS, SCHEDULE_FEED_FIELDS, SERVICE_FEED_FIELDS,
)

TODAY = datetime.now(ZoneInfo("America/Sao_Paulo")).date()


def test_crm_pending_schedules_until_confirmed(sb: Sandbox, api) -> None:
    sb.seed()
    crm = api("crm")
    feed = crm.get("/api/v1/sync/pending-schedules").json()
    assert [s["id"] for s in feed["data"]] == [501, 502]
    assert set(feed["data"][0]) == set(SCHEDULE_FEED_FIELDS)
    assert feed["meta"] == {"current_page": 1, "last_page": 1, "per_page": 100, "total": 2}
    assert crm.post("/api/v1/sync/confirm/501", json={"operacao_schedule_id": 77}).status_code == 200
    assert [s["id"] for s in crm.get("/api/v1/sync/pending-schedules").json()["data"]] == [502]


def test_crm_pending_billing_setup_until_configured(sb: Sandbox, api) -> None:
    sb.seed()
    crm = api("crm")
    feed = crm.get("/api/v1/sync/pending-billing-setup").json()["data"]
    assert [c["id"] for c in feed] == [701, 702]
    assert set(feed[0]) == set(BILLING_FEED_FIELDS)
    done = crm.post("/api/v1/contracts/701/billing-setup", json={"financeiro_id": 55})
    assert done.json()["data"]["financeiro_id"] == 55
    assert [c["id"] for c in crm.get("/api/v1/sync/pending-billing-setup").json()["data"]] == [702]


def test_operacao_completed_services_by_day_keep_listing_billed(sb: Sandbox, api) -> None:
    sb.seed()
    ops = api("operacao")
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    feed = ops.get("/api/v1/services/completed", params={"date": yesterday}).json()["data"]
    assert [s["id"] for s in feed] == [9001, 9002]
    assert set(feed[0]) == set(SERVICE_FEED_FIELDS)
    assert feed[1]["extras"] == [{"description": "Deslocamento", "value": 25.0}]
    assert feed[1]["total"] == 6 * 35.0 + 25.0
    assert [s["id"] for s in ops.get("/api/v1/services/completed", params={"date": TODAY.isoformat()}).json()["data"]] == [9003]
    assert ops.put("/api/v1/services/9001/billed", json={"invoice_id": 3}).status_code == 200
    again = ops.get("/api/v1/services/completed", params={"date": yesterday}).json()["data"]
    assert {s["id"]: s["billed"] for s in again} == {9001: True, 9002: False}


def test_operacao_completed_needs_a_valid_date(api) -> None:
    ops = api("operacao")
    assert ops.get("/api/v1/services/completed").status_code == 422
    assert ops.get("/api/v1/services/completed", params={"date": "ontem"}).status_code == 422
    assert ops.put("/api/v1/services/123456/billed", json={"invoice_id": 1}).status_code == 404


def test_cuidadores_pending_updates_until_confirmed(sb: Sandbox, api) -> None:
    sb.seed()
    cui = api("cuidadores")
    feed = cui.get("/api/v1/sync/pending-updates").json()["data"]
    assert [u["id"] for u in feed] == [801, 802]
    assert set(feed[0]) == set(CAREGIVER_FEED_FIELDS)
    assert cui.post("/api/v1/sync/confirm/801").status_code == 200
    assert [u["id"] for u in cui.get("/api/v1/sync/pending-updates").json()["data"]] == [802]
    assert cui.post("/api/v1/sync/confirm/999").status_code == 404


def test_feeds_page_and_a_client_following_links_sees_everything(sb: Sandbox, api) -> None:
    sb.seed({"crm": {"pending_schedules": [
        {"id": 1000 + i, "client_id": i, "contract_id": 2000 + i, "service_type": "cuidador_idoso",
         "start_date": "2026-05-01T08:00:00-03:00", "end_date": None, "preferences": {}} for i in range(5)]}})
    sb.systems["crm"].page_size = 2
    crm = api("crm")
    first = crm.get("/api/v1/sync/pending-schedules").json()
    assert len(first["data"]) == 2
    assert first["meta"] == {"current_page": 1, "last_page": 3, "per_page": 2, "total": 5}
    seen, url = [], "/api/v1/sync/pending-schedules"
    while url:
        page = crm.get(url).json()
        seen += [s["id"] for s in page["data"]]
        url = page["links"]["next"]
    assert seen == [1000, 1001, 1002, 1003, 1004]
    assert crm.get("/api/v1/sync/pending-schedules", params={"page": 3}).json()["links"]["next"] is None


def test_default_page_size_is_100(sb: Sandbox, api) -> None:
    sb.seed({"cuidadores": {"updates": [{"id": i, "caregiver_id": i, "changes": {}, "updated_at": None}
                                        for i in range(1, 151)]}})
    page = api("cuidadores").get("/api/v1/sync/pending-updates").json()
    assert len(page["data"]) == 100 and page["meta"]["last_page"] == 2 and page["links"]["next"]
