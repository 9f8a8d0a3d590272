"""An event has one first run (issue 14's fault burst): the run coordinator makes the run
it submits the owner of its event, and cancels, before it starts, a second first run of
the same event (the relay's launch timed out but went through; the sensor dispatched the
event again). Re-executions and the runs of actions that waited are not first runs."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.kernel import tags

COORDINATOR = {"module": "carinho_pipelines.platform.coordinator", "class": "EventRunCoordinator",
               "config": {"max_concurrent_runs": 4}}


def _submitted(instance: DagsterInstance, workspace, job, run_tags: dict[str, str]):
    """A run created and submitted as the webserver's ``launchRun`` does."""
    location = workspace.get_code_location(workspace.code_location_names[0])
    remote = next(r for r in location.get_repositories().values() if r.has_job(job.name)).get_full_job(job.name)
    run = instance.create_run_for_job(job, tags=run_tags, remote_job_origin=remote.get_remote_origin(),
                                      job_code_origin=remote.get_python_origin())
    instance.submit_run(run.run_id, workspace)
    return instance.get_run_by_id(run.run_id)


def test_a_second_first_run_of_an_event_is_cancelled_before_it_starts_and_names_the_owner(
        hub, tmp_path, monkeypatch):
    monkeypatch.setenv("CARINHO_DATABASE_URL", hub.store_url)
    event_id = hub.event("lead.created", "site", {"name": "Ana", "phone": "5511977770001"})
    other_id = hub.event("lead.created", "site", {"name": "Bia", "phone": "5511977770002"})
    event = hub.store.get_event(event_id)
    job = EVENT_JOBS["lead.created"]
    with DagsterInstance.local_temp(str(tmp_path), overrides={"run_coordinator": COORDINATOR}) as instance, \
            in_process_test_workspace(instance, LoadableTargetOrigin(module_name="carinho_pipelines.definitions")) as ws:
        first = _submitted(instance, ws, job, tags.event_run_tags(event, tags.BY_RELAY))
        second = _submitted(instance, ws, job, tags.event_run_tags(event, tags.BY_DISPATCH_SENSOR))
        # a run of another event, and a run of this event's waiting actions, go ahead
        other = _submitted(instance, ws, job, tags.event_run_tags(hub.store.get_event(other_id), tags.BY_DISPATCH_SENSOR))
        resumed = _submitted(instance, ws, job, tags.event_run_tags(event, tags.BY_PAUSE_SENSOR))

        assert first.status == DagsterRunStatus.QUEUED
        assert second.status == DagsterRunStatus.CANCELED
        assert other.status == resumed.status == DagsterRunStatus.QUEUED
        assert hub.store.get_event(event_id)["run_id"] == first.run_id
        assert hub.store.get_event(event_id)["dispatched_at"] is not None
        assert hub.store.get_event(other_id)["run_id"] == other.run_id
        said = [r.dagster_event.message for r in instance.all_logs(second.run_id) if r.dagster_event]
        assert any(f"already has run {first.run_id}" in (m or "") for m in said), said
