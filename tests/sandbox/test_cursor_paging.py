"""Following ``links.next`` (a cursor) reads every item of a feed exactly once.

Also while the feed changes between pages the way a sync changes it: items it read are
confirmed (they leave a pending feed) or marked billed (they stay, flagged), and new
items arrive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carinho_sandbox import Sandbox

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
DAY = (datetime.now(SAO_PAULO) - timedelta(days=1)).date()
FEED = "/api/v1/sync/pending-schedules"


def schedule(i: int) -> dict:
    return {"id": i, "client_id": i, "contract_id": 5000 + i, "service_type": "horista",
            "start_date": "2026-05-01T08:00:00-03:00", "end_date": None, "preferences": {}}


def service(i: int, day=DAY) -> dict:
    done = datetime.combine(day, datetime.min.time().replace(hour=15), SAO_PAULO).isoformat()
    return {"id": i, "client_id": 1, "service_type": "horista", "hours": 4, "hourly_rate": 30.0, "total": 120.0,
            "extras": [], "completed_at": done, "billed": False}


def walk(http, url: str, params: dict | None = None, between=None) -> list[list[int]]:
    """The ids of each page, following links.next; ``between(page_ids)`` runs after each page."""
    pages: list[list[int]] = []
    while url:
        body = http.get(url, params=params).json()
        pages.append([item["id"] for item in body["data"]])
        if between is not None:
            between(pages[-1])
        url, params = body["links"]["next"], None
        assert len(pages) < 1000, "links.next never ends"
    return pages


def test_links_next_carries_a_cursor_and_reads_each_item_once(sb: Sandbox, api) -> None:
    sb.seed({"crm": {"pending_schedules": [schedule(i) for i in range(1, 24)]}})
    sb.systems["crm"].page_size = 5
    crm = api("crm")
    first = crm.get(FEED).json()
    assert first["meta"] == {"current_page": 1, "last_page": 5, "per_page": 5, "total": 23}
    assert "cursor=" in first["links"]["next"]
    pages = walk(crm, FEED)
    assert [i for page in pages for i in page] == list(range(1, 24))
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]


def test_confirming_what_was_read_neither_skips_nor_repeats(sb: Sandbox, api) -> None:
    """A pending feed shrinks as a sync confirms; page numbers would skip, the cursor does not."""
    sb.seed({"crm": {"pending_schedules": [schedule(i) for i in range(1, 31)]}})
    sb.systems["crm"].page_size = 4
    crm = api("crm")

    def confirm(ids: list[int]) -> None:
        for i in ids:
            assert crm.post(f"/api/v1/sync/confirm/{i}", json={"operacao_schedule_id": 900 + i}).status_code == 200

    pages = walk(crm, FEED, between=confirm)
    read = [i for page in pages for i in page]
    assert read == list(range(1, 31))
    assert crm.get(FEED).json()["data"] == []


def test_items_added_while_paging_are_read_once_and_old_ones_never_twice(sb: Sandbox, api) -> None:
    sb.seed({"crm": {"pending_schedules": [schedule(i) for i in range(10, 30)]}})
    sb.systems["crm"].page_size = 3
    crm = api("crm")
    added: list[int] = []

    def add(ids: list[int]) -> None:
        # one new item after the end (a later id), one before the cursor (an id already passed)
        new = 100 + len(added)
        sb.seed({"crm": {"pending_schedules": [schedule(new), schedule(-len(added) - 1)]}})
        added.append(new)

    read = [i for page in walk(crm, FEED, between=add) for i in page]
    assert len(read) == len(set(read))
    assert set(range(10, 30)) <= set(read)
    # every item added after the end of the feed is read, since the walk reaches it
    # (but the last one, added after the last page)
    assert set(added[:-1]) <= set(read) and added[-1] not in read
    # an item added behind the cursor waits for the next read of the feed (never a repeat)
    assert all(i > 0 for i in read)
    assert crm.get(FEED).json()["data"][0]["id"] == -len(added)  # a read from the start lists them


def test_marking_billed_while_paging_keeps_every_service_once(sb: Sandbox, api) -> None:
    other_day = DAY - timedelta(days=1)
    sb.seed({"operacao": {"services": [service(i, DAY if i % 3 else other_day) for i in range(1, 61)]}})
    sb.systems["operacao"].page_size = 7
    ops = api("operacao")

    def bill(ids: list[int]) -> None:
        for i in ids:
            assert ops.put(f"/api/v1/services/{i}/billed", json={"invoice_id": i}).status_code == 200

    pages = walk(ops, "/api/v1/services/completed", {"date": DAY.isoformat()}, between=bill)
    read = [i for page in pages for i in page]
    assert read == [i for i in range(1, 61) if i % 3]
    again = ops.get("/api/v1/services/completed", params={"date": DAY.isoformat()}).json()
    assert again["meta"]["total"] == 40 and all(s["billed"] for s in again["data"])


def test_page_numbers_still_work_and_a_bad_cursor_is_422(sb: Sandbox, api) -> None:
    sb.seed({"cuidadores": {"updates": [{"id": i, "caregiver_id": i, "changes": {"a": 1}, "updated_at": None}
                                        for i in range(1, 12)]}})
    sb.systems["cuidadores"].page_size = 5
    cui = api("cuidadores")
    third = cui.get("/api/v1/sync/pending-updates", params={"page": 3}).json()
    assert [u["id"] for u in third["data"]] == [11]
    assert third["meta"] == {"current_page": 3, "last_page": 3, "per_page": 5, "total": 11}
    assert third["links"]["next"] is None
    bad = cui.get("/api/v1/sync/pending-updates", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and "cursor" in bad.json()["errors"]
