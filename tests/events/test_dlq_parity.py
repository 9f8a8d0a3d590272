"""UI parity: a re-execution launched from the Dagster UI (from failure) is seen by the
DLQ exactly like one launched through the API; and `carinho dlq migrate-tags`, which
brings runs tagged before "the DLQ tag means the DLQ" in line."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, ReexecutionOptions, RunsFilter, build_reconstructable_job, execute_job

from carinho_pipelines import dlq
from carinho_pipelines.kernel import tags
from carinho_pipelines.cli import main
from carinho_pipelines.events.jobs import run_tags
from carinho_pipelines.platform.instance import prepare_dagster_home


@pytest.fixture
def instance(tmp_path: Path, monkeypatch, hub):
    home = prepare_dagster_home(tmp_path / "dagster_home", postgres=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CARINHO_DATABASE_URL", hub.store_url)
    with DagsterInstance.get() as inst:
        yield inst


def _run(hub, instance, event_id, **kwargs):
    event = hub.store.get_event(event_id)
    job = build_reconstructable_job("carinho_pipelines.definitions", "resolved_job", ("event_lead_updated",))
    run_tags_ = run_tags(event)
    if "reexecution_options" in kwargs:
        # the UI's re-execution copies the parent's tags and links parent/root;
        # execute_job does not, so the test gives them explicitly
        parent = kwargs["reexecution_options"].parent_run_id
        run_tags_.update({k: v for k, v in instance.get_run_by_id(parent).tags.items() if k.startswith("carinho/")})
        run_tags_.update({"dagster/parent_run_id": parent, "dagster/root_run_id": parent})
    kwargs["tags"] = run_tags_
    with execute_job(job, instance=instance, raise_on_error=False, **kwargs) as result:
        return result.run_id, result.success


def test_a_ui_reexecution_from_failure_takes_the_item_out_of_the_dlq(hub, instance):
    hub.sb.fail("crm", status=422, count=1)  # CRM refuses once; the data is then fixed at the source
    eid = hub.event("lead.updated", "crm", {"id": 1})
    parent, ok = _run(hub, instance, eid)
    assert not ok
    assert [r.run_id for r in dlq.failed_runs(instance)] == [parent]
    # what the UI's "Re-execute from failure" does
    child, ok = _run(hub, instance, eid, reexecution_options=ReexecutionOptions.from_failure(parent, instance))
    assert ok
    assert dlq.failed_runs(instance) == []
    # the UI copied the parent's tags, DLQ state and launcher included
    assert {tags.DLQ, tags.ERROR_CLASS, tags.FAILED_OPS, tags.FAILED_DESTINATIONS} <= set(
        instance.get_run_by_id(child).tags)
    # the re-drive sensor's reconcile puts both right
    assert dlq.reconcile(instance) == [parent]
    assert instance.get_run_by_id(parent).tags[tags.DLQ] == "replayed"
    assert instance.get_run_by_id(child).tags[tags.LAUNCHED_BY] == "dagster_ui"
    assert not set(tags.FAILURE_TAGS) & set(instance.get_run_by_id(child).tags)
    assert [c["status"] for c in hub.calls("crm", "POST", "/api/v1/webhooks/events")] == [422, 202]


def test_migrate_tags_fixes_runs_tagged_before_the_dlq_tag_meant_the_dlq(hub, instance, tmp_path):
    # what runs looked like before: every run launched with carinho/dlq=open, and
    # re-executions with empty error tags
    legacy = {tags.DLQ: "open", tags.ERROR_CLASS: "", tags.FAILED_OPS: "", tags.FAILED_DESTINATIONS: ""}
    ok_id, ok = _run(hub, instance, hub.event("lead.updated", "crm", {"id": 3}))
    assert ok
    instance.add_run_tags(ok_id, legacy)
    hub.sb.fail("crm", status=422, count=1)
    failed_id, ok = _run(hub, instance, hub.event("lead.updated", "crm", {"id": 4}))
    assert not ok
    dlq.remove_run_tags(instance, failed_id, [tags.DLQ])  # a failure the old sensor never tagged
    instance.add_run_tags(failed_id, {tags.FAILED_DESTINATIONS: ""})
    open_runs = lambda: {r.run_id for r in instance.get_runs(filters=RunsFilter(tags={tags.DLQ: "open"}))}  # noqa: E731
    assert open_runs() == {ok_id}

    runner = CliRunner()
    migrated = runner.invoke(main, ["dlq", "migrate-tags"])
    assert migrated.exit_code == 0, migrated.output
    assert "1 successful run(s) cleared of DLQ tags, 1 failed run(s) put in the DLQ" in migrated.output
    assert not set(tags.FAILURE_TAGS) & set(instance.get_run_by_id(ok_id).tags)
    failed = instance.get_run_by_id(failed_id).tags
    assert failed[tags.DLQ] == "open" and failed[tags.ERROR_CLASS] == "invalid"
    assert failed[tags.FAILED_DESTINATIONS] == "crm"
    assert open_runs() == {r.run_id for r in dlq.failed_runs(instance)} == {failed_id}
    again = runner.invoke(main, ["dlq", "migrate-tags"])
    assert "0 successful run(s) cleared of DLQ tags, 0 failed run(s) put in the DLQ, 0 with empty tags" in again.output


def test_migrate_tags_needs_the_hubs_dagster_home(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(main, ["dlq", "migrate-tags"])
    assert result.exit_code != 0 and "DAGSTER_HOME is not set" in result.output


def test_a_run_failed_after_it_succeeded_stays_in_the_dlq_when_its_success_is_seen_late(hub, instance):
    """Run monitoring may fail a run after its success (its worker lost as it ended),
    and dlq_failure_sensor puts it in the DLQ: the clean-up of succeeded runs' copied
    tags must leave it open."""
    run_id, ok = _run(hub, instance, hub.event("lead.updated", "crm", {"id": 5}))
    assert ok
    instance.report_run_failed(instance.get_run_by_id(run_id), "the run worker died after its last op (test)")
    dlq.annotate(instance, instance.get_run_by_id(run_id))
    assert dlq.clear_failure_tags(instance, instance.get_run_by_id(run_id)) == []
    assert instance.get_run_by_id(run_id).tags[tags.DLQ] == "open"
    assert [r.run_id for r in dlq.failed_runs(instance, error_class="unavailable")] == [run_id]


def test_a_reexecution_the_api_is_launching_is_not_taken_for_the_uis(hub, instance):
    """Between the API's launch of a re-execution and its marking the parent replayed, a
    re-drive tick sees an open item with a child: the claim says it is the API's, so the
    child keeps ``api:<key>`` and the parent is not tagged as replayed by the UI."""
    import datetime as dt

    from carinho_pipelines.store.tables import dlq_replays

    hub.sb.fail("crm", status=422, count=1)
    eid = hub.event("lead.updated", "crm", {"id": 6})
    parent, ok = _run(hub, instance, eid)
    assert not ok
    with hub.store.engine.begin() as conn:  # what dlq.replay commits before it launches
        conn.execute(dlq_replays.insert().values(parent_run_id=parent, requested_at=dt.datetime.now(dt.timezone.utc),
                                                 requested_by="api:ops"))
    child, ok = _run(hub, instance, eid, reexecution_options=ReexecutionOptions.from_failure(parent, instance))
    assert ok
    instance.add_run_tags(child, {tags.LAUNCHED_BY: "api:ops"})
    assert dlq.reconcile(instance, hub.store) == []
    assert instance.get_run_by_id(child).tags[tags.LAUNCHED_BY] == "api:ops"
    assert instance.get_run_by_id(parent).tags[tags.DLQ] == "open"  # replay marks it when its launch returns
    assert dlq.reconcile(instance) == [parent]  # without the claims: what the re-drive did before
