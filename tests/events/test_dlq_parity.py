"""UI parity: a re-execution launched from the Dagster UI (from failure) is seen by the
DLQ exactly like one launched through the API; and the `carinho dlq` CLI."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, ReexecutionOptions, build_reconstructable_job, execute_job

from carinho_pipelines import dlq, tags
from carinho_pipelines.cli import main
from carinho_pipelines.events.jobs import run_tags
from carinho_pipelines.instance import prepare_dagster_home


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
    assert dlq.reconcile(instance) == [parent]
    assert instance.get_run_by_id(parent).tags[tags.DLQ] == "replayed"
    assert [c["status"] for c in hub.calls("crm", "POST", "/api/v1/webhooks/events")] == [422, 202]


def test_cli_lists_shows_and_archives(hub, instance):
    hub.sb.fail("crm", status=422, count=1)
    eid = hub.event("lead.updated", "crm", {"id": 2})
    run_id, ok = _run(hub, instance, eid)
    assert not ok
    runner = CliRunner()
    listed = runner.invoke(main, ["dlq", "list"])
    assert listed.exit_code == 0, listed.output
    assert run_id in listed.output and "invalid" in listed.output and "1 item(s)" in listed.output
    shown = runner.invoke(main, ["dlq", "show", run_id])
    assert '"error_class": "invalid"' in shown.output
    assert runner.invoke(main, ["dlq", "archive", run_id, "--reason", " "]).exit_code != 0
    archived = runner.invoke(main, ["dlq", "archive", run_id, "--reason", "lead apagado no CRM"])
    assert archived.exit_code == 0, archived.output
    assert "0 item(s)" in runner.invoke(main, ["dlq", "list"]).output
    assert instance.get_run_by_id(run_id).tags[dlq.ARCHIVE_REASON] == "lead apagado no CRM"
