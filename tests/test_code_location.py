"""The code location loads the way the daemon and the webserver load it."""

from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module


def test_workspace_module_loads_one_definitions_with_every_job_sensor_and_schedule():
    [target] = loadable_targets_from_python_module("carinho_pipelines.definitions", working_directory=None)
    repo = target.target_definition.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    assert "event_lead_created" in jobs and "flush_whatsapp_outbox" in jobs
    assert {s.name for s in repo.sensor_defs} >= {"event_dispatch_sensor", "dlq_failure_sensor", "dlq_redrive_sensor",
                                                   "whatsapp_outbox_sensor"}
    # the four syncs (CONTRACTS §5), their freshness checks, the 07:30 checklist, retention
    assert {s.name for s in repo.schedule_defs} == {
        "crm_operacao_schedule", "operacao_financeiro_schedule", "crm_financeiro_schedule", "cuidadores_crm_schedule",
        "sync_freshness_schedule", "daily_checklist_schedule", "retention_schedule",
    }
