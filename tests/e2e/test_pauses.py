"""A pause across a burst, on the real stack (daemon, run queue, sandbox): nothing
failed, everything delivered once after the resume, other destinations served meanwhile."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from carinho_pipelines.kernel import tags
from tests.e2e.conftest import API_KEY
from tests.support import wait_for

BURST = 12
PHONES = [f"55119700{n:05d}" for n in range(BURST)]


def _leads_in_crm(stack) -> dict[str, int]:
    counts = {p: 0 for p in PHONES}
    for call in stack.sb.calls("crm"):
        phone = (call.get("json") or {}).get("phone")
        if call["method"] == "POST" and call["path"] == "/api/v1/leads" and phone in counts:
            counts[phone] += 1
    return counts


def test_a_pause_across_a_burst_holds_the_crm_calls_and_the_resume_sends_each_once(stack):
    key = {"X-API-Key": API_KEY}
    assert stack.http.post("/api/destinations/crm/pause", json={"reason": "CRM maintenance 22:00-23:00"},
                           headers=key).status_code == 200
    try:
        ids = [stack.post("/webhooks/site/lead", "site", {"name": f"Pessoa {n}", "phone": phone,
                                                          "utm_source": "google"}).json()["event_id"]
               for n, phone in enumerate(PHONES)]
        for event_id in ids:  # every run ends, none failed: waiting is not failing
            assert stack.wait_status(event_id, {"succeeded", "failed"})["status"] == "succeeded"
        assert set(_leads_in_crm(stack).values()) == {0}
        replied = {m["phone"] for m in stack.sb.zapi.sent()}
        assert set(PHONES) <= replied  # WhatsApp (another destination) was served meanwhile
        with DagsterInstance.from_config(str(stack.home)) as instance:
            waiting = instance.get_runs(filters=RunsFilter(tags={tags.PAUSED: "crm"}))
        assert {int(r.tags[tags.EVENT_ID]) for r in waiting} >= set(ids)
        assert all(r.status == DagsterRunStatus.SUCCESS and tags.DLQ not in r.tags for r in waiting)
        dlq = stack.http.get("/api/dlq", params={"event_type": "lead.created"}, headers=key).json()["data"]
        assert [i for i in dlq if str(i.get("event_id")) in {str(e) for e in ids}] == []
    finally:
        assert stack.http.post("/api/destinations/crm/resume", headers=key).status_code == 200
    wait_for(lambda: set(_leads_in_crm(stack).values()) == {1}, timeout=180, what="every lead in the CRM once")
    with DagsterInstance.from_config(str(stack.home)) as instance:
        def resumed():
            return [r for r in instance.get_runs(filters=RunsFilter(tags={tags.LAUNCHED_BY: tags.BY_PAUSE_SENSOR}))
                    if int(r.tags[tags.EVENT_ID]) in ids]

        wait_for(lambda: len(resumed()) == BURST and all(r.status == DagsterRunStatus.SUCCESS for r in resumed()),
                 timeout=60, what="one successful resumed run per event")
    assert set(_leads_in_crm(stack).values()) == {1}  # and still once each
