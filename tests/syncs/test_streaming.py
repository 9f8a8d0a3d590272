"""A sync reads its feed page by page: what it does when a page in the middle cannot be read,
and that a feed confirmed while it is read (cursor paging) loses nothing."""

from __future__ import annotations

from carinho_pipelines.resources.http import Pager
from tests.syncs.conftest import materializations

UPDATES = "/api/v1/sync/pending-updates"


def updates(n: int) -> list[dict]:
    return [{"id": 800 + i, "caregiver_id": 300 + i, "changes": {"status": "active"}, "updated_at": None}
            for i in range(n)]


def test_a_page_that_cannot_be_read_fails_the_run_after_syncing_what_was_read(hub, monkeypatch):
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": updates(6)}})  # three pages of two
    read = Pager.next_page

    def next_page(self):
        page = read(self)
        if self.path == UPDATES and self.read == 1:
            sb.fail("cuidadores", status=503, count=1)  # the read of page 2 is answered 503
        return page

    monkeypatch.setattr(Pager, "next_page", next_page)
    result = hub.run("cuidadores_crm", attempts=1)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "could not read from cuidadores after 1 page" in str(failure.event_specific_data.error)
    # the first page was delivered and confirmed, once
    assert sorted(e["event_id"] for e in sb.events("crm")) == [
        "sync:cuidadores_crm:update:800", "sync:cuidadores_crm:update:801"]
    assert sorted(u["id"] for u in sb.records("cuidadores", "updates") if u.get("confirmed_at")) == [800, 801]
    assert materializations(result)["crm/caregiver_updates"]["confirmed"] == 2

    monkeypatch.setattr(Pager, "next_page", read)
    again = hub.run("cuidadores_crm")
    assert again.success
    assert len(sb.events("crm")) == 6 and len({e["event_id"] for e in sb.events("crm")}) == 6
    assert all(u.get("confirmed_at") for u in sb.records("cuidadores", "updates"))


def test_a_long_pending_feed_is_synced_whole_in_one_run(hub):
    """Confirms leave the pending feed; reading it by cursor while syncing skips nothing."""
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": updates(25)}})  # 13 pages of two

    result = hub.run("cuidadores_crm")

    assert result.success
    assert len(sb.events("crm")) == 25
    assert all(u.get("confirmed_at") for u in sb.records("cuidadores", "updates"))
    meta = materializations(result)["crm/caregiver_updates"]
    assert meta["read"] == 25 and meta["written"] == 25 and meta["confirmed"] == 25
