"""The dispatch sensor: due events only, tags, exactly-once bookkeeping."""

import datetime as dt
from types import SimpleNamespace

from dagster import SkipReason, build_sensor_context

from carinho_pipelines.kernel import tags
from carinho_pipelines.events import ledger
from carinho_pipelines.events.sensors import dispatch_tick, event_dispatch_sensor
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.store import Envelope, utcnow


def evaluate(hub, cursor=None, now=None):
    """A tick of the dispatch sensor; at ``now`` (the sensor's clock, injected) if given."""
    context = build_sensor_context(instance=hub.instance, cursor=cursor,
                                   resources={"event_store": EventStoreResource(database_url=hub.store_url)})
    if now is None:
        return event_dispatch_sensor.evaluate_tick(context)
    result = dispatch_tick(context, hub.store, now)
    return SimpleNamespace(run_requests=[] if isinstance(result, SkipReason) else result.run_requests)


def test_one_run_request_per_due_event_keyed_by_event_id_with_queue_tags(hub):
    lead = hub.event("lead.created", "site", {"phone": "5511988887777"})
    later = hub.event("feedback.requested", "hub", {"service_id": 1}, available_at=utcnow() + dt.timedelta(hours=2))
    hub.store.ingest(Envelope("whatsapp.inbound", "whatsapp", "from-me", "integrations-high", {}, utcnow(),
                              filtered_reason="from_me"))
    result = evaluate(hub)
    [request] = result.run_requests
    assert request.run_key == str(lead) and request.job_name == "event_lead_created"
    assert {k: v for k, v in request.tags.items() if not k.startswith("dagster/sensor")} == {
        tags.EVENT_ID: str(lead), tags.EVENT_TYPE: "lead.created", tags.SOURCE: "site",
        tags.QUEUE: "integrations-high", tags.PRIORITY: "10", tags.LAUNCHED_BY: "dispatch_sensor", tags.CELERY_QUEUE: "integrations-high",
    }
    assert result.cursor == str(lead)
    assert later not in [int(r.run_key) for r in result.run_requests]


def test_an_event_whose_run_exists_is_marked_dispatched_and_not_requested_again(hub):
    eid = hub.event("lead.updated", "crm", {"id": 3})
    run = hub.run(eid)  # e.g. submitted directly, or a run whose dispatch mark was lost
    assert run.success
    result = evaluate(hub, cursor=None)  # a reset cursor changes nothing
    assert result.run_requests == []
    assert hub.store.get_event(eid)["run_id"] == run.run_id
    assert ledger.due_events(hub.store, utcnow(), 10) == []


def test_delayed_events_are_dispatched_once_due(hub):
    eid = hub.event("feedback.requested", "hub", {"service_id": 1}, available_at=utcnow() + dt.timedelta(seconds=1))
    assert evaluate(hub).run_requests == []
    assert [r.run_key for r in evaluate(hub, now=utcnow() + dt.timedelta(seconds=1.2)).run_requests] == [str(eid)]


def test_outbox_sensor_flushes_only_when_messages_wait_and_whatsapp_is_back(hub):
    from carinho_pipelines.events import whatsapp_outbox
    from carinho_pipelines.events.whatsapp_outbox import whatsapp_outbox_sensor
    from carinho_pipelines.resources import ZApiResource

    env = hub.sb.env()
    zapi = ZApiResource(base_url=env["ZAPI_BASE_URL"], instance_id=env["ZAPI_INSTANCE_ID"], token=env["ZAPI_TOKEN"],
                        client_token=env["ZAPI_CLIENT_TOKEN"])

    def tick():
        with build_sensor_context(instance=hub.instance, resources={
                "event_store": EventStoreResource(database_url=hub.store_url), "zapi": zapi}) as context:
            return whatsapp_outbox_sensor.evaluate_tick(context)

    assert tick().run_requests == []  # nothing held
    hub.sb.zapi.disconnect()
    whatsapp_outbox.forget_status()
    assert hub.run(hub.event("client.registered", "crm", {"id": 4, "name": "Bia", "phone": "5511988887777"})).success
    assert tick().run_requests == []  # held, but WhatsApp is still down
    hub.sb.zapi.connect()
    [request] = tick().run_requests
    assert request.job_name in (None, "flush_whatsapp_outbox")


# -- the relay's direct submission and the sensor never both launch ------------------


def test_an_event_the_relay_is_submitting_is_not_requested_by_the_sensor(hub):
    from relay.submit import Submitter

    eid = hub.event("lead.created", "site", {"phone": "5511988887777"})
    assert Submitter(hub.store).claim(eid)  # the relay is launching it right now
    assert evaluate(hub).run_requests == []


def test_an_event_the_sensor_claimed_is_not_submitted_by_the_relay(hub):
    from relay.submit import Submitter

    eid = hub.event("lead.created", "site", {"phone": "5511988887777"})
    [request] = evaluate(hub).run_requests
    assert request.run_key == str(eid)
    # the relay's background submission comes late (a burst, a slow thread pool): it
    # cannot take the claim, so it launches nothing
    assert not Submitter(hub.store).claim(eid)


def test_a_claimed_event_is_marked_dispatched_at_the_next_tick_once_its_run_exists(hub):
    eid = hub.event("lead.updated", "crm", {"id": 3})
    assert [r.run_key for r in evaluate(hub).run_requests] == [str(eid)]
    run = hub.run(eid)  # what the daemon does with the request
    assert evaluate(hub, cursor=str(eid)).run_requests == []
    assert hub.store.get_event(eid)["run_id"] == run.run_id


def test_a_stale_claim_is_taken_over_by_the_sensor(hub, monkeypatch):
    from relay import submit

    eid = hub.event("lead.created", "site", {"phone": "5511988887777"})
    assert submit.Submitter(hub.store).claim(eid)  # then the relay died before launching
    assert evaluate(hub).run_requests == []
    monkeypatch.setenv("CARINHO_SUBMIT_CLAIM_SECONDS", "0")
    assert [r.run_key for r in evaluate(hub).run_requests] == [str(eid)]


def test_direct_submissions_wait_in_queue_priority_order(hub, monkeypatch):
    import asyncio

    from relay import submit

    monkeypatch.setattr(submit, "MAX_IN_FLIGHT", 1)
    launched = []

    class Recording(submit.Submitter):
        def submit_now(self, event_id):
            launched.append(event_id)

    async def burst():
        submitter = Recording(hub.store)
        for event_id in range(1, 6):
            await submitter.submit(event_id, "notifications")
        await submitter.submit(6, "integrations-high")
        await submitter.submit(7, "integrations")
        await submitter.drain()

    asyncio.run(burst())
    assert launched == [6, 7, 1, 2, 3, 4, 5]


def test_while_integrations_high_has_a_backlog_the_sensor_launches_its_events_first(hub, redis_broker, monkeypatch):
    """Strict priority at the dispatch sensor too: while a lead's run waits for a worker,
    an event of another queue waits, until it has been due longer than the relay and
    the workers would make it wait."""
    from carinho_pipelines.platform import broker_queues

    url, client = redis_broker
    monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", url)
    lead = hub.event("lead.created", "site", {"phone": "5511988887777"})
    other = hub.event("lead.updated", "crm", {"id": 3})  # integrations
    client.lpush("integrations-high", "a lead's run waiting for a worker")
    assert [r.run_key for r in evaluate(hub, now=utcnow()).run_requests] == [str(lead)]
    patience = dt.timedelta(seconds=broker_queues.YIELD_TO_HIGH_MAX_SECONDS + 1)
    assert [r.run_key for r in evaluate(hub, now=utcnow() + patience).run_requests] == [str(other)]


def test_without_a_backlog_every_due_event_is_launched_at_once(hub, redis_broker, monkeypatch):
    url, _client = redis_broker
    monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", url)
    lead = hub.event("lead.created", "site", {"phone": "5511988887777"})
    other = hub.event("lead.updated", "crm", {"id": 3})
    assert sorted(int(r.run_key) for r in evaluate(hub, now=utcnow()).run_requests) == sorted([lead, other])


def test_a_run_whose_launch_was_interrupted_is_failed_for_the_re_drive(hub):
    """The webserver died (or its database restarted) between creating an event's run
    and launching it: the run would stay NOT_STARTED, owning its event, for good."""
    from carinho_pipelines.dlq.items import failure_of
    from carinho_pipelines.events.jobs import EVENT_JOBS, run_tags
    from carinho_pipelines.store.claims import own_event

    eid = hub.event("lead.updated", "crm", {"id": 4})
    event = hub.store.get_event(eid)
    job = EVENT_JOBS[event["event_type"]]
    stranded = hub.instance.create_run_for_job(job, tags={**run_tags(event), tags.LAUNCHED_BY: "relay"})
    own_event(hub.store.engine, eid, stranded.run_id, utcnow())
    timeout = hub.instance.run_monitoring_start_timeout_seconds

    evaluate(hub, now=utcnow() + dt.timedelta(seconds=timeout - 5))  # a launch may still be under way
    assert hub.instance.get_run_by_id(stranded.run_id).status.value == "NOT_STARTED"

    evaluate(hub, now=utcnow() + dt.timedelta(seconds=timeout + 1))
    run = hub.instance.get_run_by_id(stranded.run_id)
    assert run.status.value == "FAILURE"
    failure = failure_of(hub.instance, run.run_id)
    assert failure.error_class == "unavailable", failure  # the re-drive's to run again
    assert "never launched" in failure.error_message
