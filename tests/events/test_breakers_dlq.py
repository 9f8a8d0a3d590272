"""Circuit breakers and the DLQ service over a Dagster instance."""

import datetime as dt

from carinho_pipelines.destinations import breakers
from carinho_pipelines import dlq
from carinho_pipelines.kernel import tags
from carinho_pipelines.events import ledger
from carinho_pipelines.store import utcnow


def test_breaker_opens_after_five_failures_in_the_window_and_one_probe_closes_it(hub):
    store, now = hub.store, utcnow()
    for i in range(4):
        assert breakers.record_failure(store, "crm", now + dt.timedelta(seconds=i)) == "closed"
    assert breakers.allow(store, "crm", now)
    assert breakers.record_failure(store, "crm", now + dt.timedelta(seconds=5)) == "open"
    assert not breakers.allow(store, "crm", now + dt.timedelta(seconds=30))
    later = now + dt.timedelta(seconds=5) + breakers.open_for()
    assert breakers.healthy(store, "crm", later)
    assert breakers.allow(store, "crm", later)  # the probe
    assert not breakers.allow(store, "crm", later)  # only one
    assert breakers.states(store)["crm"] == "half_open"
    breakers.record_success(store, "crm")
    assert breakers.states(store, ("crm", "email")) == {"crm": "closed", "email": "closed"}


def test_failures_outside_the_window_do_not_add_up(hub):
    now = utcnow()
    for i in range(4):
        breakers.record_failure(hub.store, "marketing", now)
    assert breakers.record_failure(hub.store, "marketing", now + breakers.FAILURE_WINDOW + dt.timedelta(seconds=1)) == "closed"


def test_a_half_open_probe_that_fails_reopens(hub):
    now = utcnow()
    for _ in range(5):
        breakers.record_failure(hub.store, "crm", now)
    assert breakers.allow(hub.store, "crm", now + breakers.open_for())
    assert breakers.record_failure(hub.store, "crm", now + breakers.open_for()) == "open"


def test_open_breaker_fails_actions_fast_without_calling(hub):
    now = utcnow()
    for _ in range(5):
        breakers.record_failure(hub.store, "financeiro", now)
    eid = hub.event("client.registered", "crm", {"id": 1, "name": "Bia"})
    result = hub.run(eid)
    assert not result.success
    assert hub.calls("financeiro", "POST", "/api/billing/setup") == []
    record = ledger.get_action(hub.store, eid, "financeiro_billing_setup")
    assert record.error_class == "unavailable" and "circuit open" in record.error_message
    failure = dlq.failure_of(hub.instance, result.run_id)
    assert failure.failed_ops == ["financeiro_billing_setup"] and failure.error_class == "unavailable"
    assert failure.destinations == ["financeiro"]


def test_dlq_lists_annotates_filters_and_archives_failed_runs(hub):
    hub.sb.fail("crm", status=422, count=1)
    bad = hub.run(hub.event("lead.updated", "crm", {"id": 1}))
    ok = hub.run(hub.event("lead.updated", "crm", {"id": 2}))
    assert not bad.success and ok.success
    [run] = dlq.failed_runs(hub.instance)
    assert run.run_id == bad.run_id
    failure = dlq.annotate(hub.instance, run)
    assert failure.error_class == "invalid" and failure.failed_ops == ["forward_crm"]
    assert failure.responses["forward_crm"]["status"] == 422
    tagged = hub.instance.get_run_by_id(run.run_id).tags
    assert tagged[tags.ERROR_CLASS] == "invalid" and tagged[tags.FAILED_OPS] == "forward_crm"
    item = dlq.item(hub.instance, hub.instance.get_run_by_id(run.run_id))
    assert item["kind"] == "event" and item["event_type"] == "lead.updated" and item["attempts"] == 1
    assert dlq.failed_runs(hub.instance, error_class="unavailable") == []
    assert dlq.failed_runs(hub.instance, kind="sync") == []
    stats = dlq.stats(hub.instance, utcnow())
    assert stats["total"] == 1 and stats["by_error_class"] == {"invalid": 1} and stats["by_type"] == {"lead.updated": 1}
    dlq.archive(hub.instance, run.run_id, "dado corrigido no CRM", "ops", utcnow())
    assert dlq.failed_runs(hub.instance) == []
    assert hub.instance.get_run_by_id(run.run_id).tags[tags.DLQ] == "archived"


def test_a_ui_reexecution_of_an_archived_item_that_fails_is_open_again(hub):
    hub.sb.fail("crm", status=422, count=2)
    eid = hub.event("lead.updated", "crm", {"id": 9})
    parent = hub.run(eid)
    dlq.archive(hub.instance, parent.run_id, "engano", "ops", utcnow())
    archived = hub.instance.get_run_by_id(parent.run_id).tags
    # the UI copies the parent's tags onto the re-execution
    inherited = {k: v for k, v in archived.items() if k.startswith("carinho/")}
    inherited.update({"dagster/parent_run_id": parent.run_id, "dagster/root_run_id": parent.run_id})
    from carinho_pipelines.events.jobs import EVENT_JOBS

    child = EVENT_JOBS["lead.updated"].execute_in_process(tags=inherited, resources=hub.resources(),
                                                          instance=hub.instance, raise_on_error=False)
    assert not child.success
    dlq.annotate(hub.instance, hub.instance.get_run_by_id(child.run_id))
    assert hub.instance.get_run_by_id(child.run_id).tags[tags.DLQ] == "open"
    assert [r.run_id for r in dlq.failed_runs(hub.instance)] == [child.run_id]


def test_a_step_that_lost_the_hubs_own_database_is_unavailable_and_a_bug_is_not(hub):
    """PostgreSQL dropping the run's connection (a restart: here the server terminates
    the backend itself) is the hub's own outage, re-driven like a destination's; a plain
    exception in the code is an error for a person."""
    import sqlalchemy as sa
    from dagster import job, op

    url = hub.store_url

    @op
    def loses_its_connection():
        with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))

    @op
    def has_a_bug():
        raise ValueError("a bug")

    @job
    def dropped():
        loses_its_connection()

    @job
    def buggy():
        has_a_bug()

    lost = dropped.execute_in_process(instance=hub.instance, raise_on_error=False)
    bug = buggy.execute_in_process(instance=hub.instance, raise_on_error=False)
    assert not lost.success and not bug.success
    assert dlq.failure_of(hub.instance, lost.run_id).error_class == "unavailable"
    assert "OperationalError" in dlq.failure_of(hub.instance, lost.run_id).error_message
    assert dlq.failure_of(hub.instance, bug.run_id).error_class == "error"
