"""Schedules (cron, time zone, partitions), lineage, run tags and the asset checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DefaultScheduleStatus, build_schedule_context

from carinho_pipelines.kernel import settings
from carinho_pipelines import syncs
from tests.syncs import location
from carinho_pipelines.syncs.schedules import operacao_financeiro_schedule
from carinho_pipelines.store.tables import sync_ledger
from tests.syncs.conftest import SAO_PAULO, checks, today

REPO = Path(__file__).resolve().parents[2]


def test_schedules_run_in_sao_paulo_at_the_contracted_times():
    repo = location.defs.get_repository_def()
    found = {s.name: s for s in repo.schedule_defs}
    assert {name: (s.cron_schedule, s.execution_timezone, s.job_name) for name, s in found.items()} == {
        "crm_operacao_schedule": ("0 * * * *", "America/Sao_Paulo", "crm_operacao"),
        "operacao_financeiro_schedule": ("0 23 * * *", "America/Sao_Paulo", "operacao_financeiro"),
        "crm_financeiro_schedule": ("0 6,18 * * *", "America/Sao_Paulo", "crm_financeiro"),
        "cuidadores_crm_schedule": ("0 */4 * * *", "America/Sao_Paulo", "cuidadores_crm"),
        "sync_freshness_schedule": ("30 * * * *", "America/Sao_Paulo", "sync_freshness"),
    }
    # `carinho run` syncs without anyone clicking in the UI
    assert all(s.default_status == DefaultScheduleStatus.RUNNING for s in found.values())


def test_the_23h_run_invoices_today_and_rechecks_yesterday():
    at = dt.datetime(2026, 3, 10, 23, 0, tzinfo=SAO_PAULO)  # 02:00 UTC on the 11th
    with dagster.instance_for_test() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=at)
        requests = list(operacao_financeiro_schedule(context))
    assert [r.partition_key for r in requests] == ["2026-03-09", "2026-03-10"]
    assert len({r.run_key for r in requests}) == 2


def test_daily_partitions_are_sao_paulo_days_up_to_today():
    job = location.defs.resolve_job_def("operacao_financeiro")
    partitions = job.partitions_def
    keys = partitions.get_partition_keys()
    # from the go-live date (the suite's CARINHO_GO_LIVE_DATE), not hundreds of empty days
    assert keys[0] == settings.go_live_date().isoformat() == "2026-01-01" and keys[-1] == today().isoformat()
    assert partitions.timezone == "America/Sao_Paulo"


def test_runs_are_tagged_for_the_low_queue_and_one_run_per_sync():
    for name in syncs.SYNC_NAMES:
        job = location.defs.resolve_job_def(name)
        # no DLQ tag at launch: a sync run is in the DLQ only once it failed
        assert job.tags == {"carinho/queue": "integrations-low", "carinho/sync": name, "dagster/priority": "0"}
        assert job.executor_def.name == "in_process"
    limits = yaml.safe_load((REPO / "dagster.yaml").read_text())["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "carinho/sync", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_lineage_reads_source_system_to_what_the_hub_writes():
    graph = location.defs.get_repository_def().asset_graph
    parents = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
               for k in graph.get_all_asset_keys() if graph.get(k).parent_keys}
    assert parents == {
        "operacao/schedules": ["crm/pending_schedules"],
        "operacao/completed_services": ["operacao/schedules"],
        "financeiro/invoices": ["operacao/completed_services"],
        "operacao/services_billed": ["financeiro/invoices"],
        "financeiro/billing_setups": ["crm/pending_billing_setups"],
        "crm/caregiver_updates": ["cuidadores/pending_updates"],
    }
    for key in ("crm/pending_schedules", "operacao/completed_services", "crm/pending_billing_setups",
                "cuidadores/pending_updates"):
        node = graph.get(AssetKey(key.split("/")))
        assert not node.is_materializable and node.metadata["owner_system"] == key.split("/")[0]
    # groups are the systems that own the data, so the global lineage reads
    # CRM → Operação → Financeiro and Cuidadores → CRM; a sync is found by its tag
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()
              if graph.get(k).tags.get("carinho/sync")}
    assert groups == {k: k.split("/")[0] for k in groups} and set(groups.values()) == {
        "crm", "operacao", "financeiro", "cuidadores"}
    flows = {(graph.get(p).group_name, graph.get(k).group_name) for k in graph.get_all_asset_keys()
             for p in graph.get(k).parent_keys if graph.get(p).group_name != graph.get(k).group_name}
    assert {("crm", "operacao"), ("operacao", "financeiro"), ("crm", "financeiro"), ("cuidadores", "crm")} <= flows
    by_sync = {}
    for key, node in ((k, graph.get(k)) for k in graph.get_all_asset_keys()):
        if node.tags.get("carinho/sync"):
            by_sync.setdefault(node.tags["carinho/sync"], set()).add(key.to_user_string())
    assert by_sync["operacao_financeiro"] == {"operacao/completed_services", "financeiro/invoices",
                                             "operacao/services_billed"}
    assert set(by_sync) == set(syncs.SYNC_NAMES)


def test_pending_schedule_older_than_two_hours_fails_its_check(hub):
    sb = hub.sb
    sb.seed({"crm": {"pending_schedules": [
        {"id": 501, "client_id": 101, "contract_id": None, "service_type": "cuidador_idoso",
         "start_date": "2026-03-02T08:00:00-03:00"}]}})
    first = hub.run("crm_operacao")
    assert first.success and checks(first)["no_pending_schedule_older_than_2h"].passed  # new: not stale yet

    with hub.ledger.engine.begin() as conn:  # the hub first saw it three hours ago
        conn.execute(sa.update(sync_ledger).values(
            first_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)))
    later = hub.run("crm_operacao")

    check = checks(later)["no_pending_schedule_older_than_2h"]
    assert not check.passed
    assert check.metadata["stale_ids"].value == "501"


def test_freshness_says_whether_each_sync_ran_recently(hub):
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": [{"id": 801, "caregiver_id": 301, "changes": {"status": "x"}}]}})
    freshness = hub.defs.resolve_job_def("sync_freshness")

    before = checks(freshness.execute_in_process(instance=hub.instance))
    assert before  # four checks, none passing: nothing has ever run
    assert not any(c.passed for c in before.values())

    assert hub.run("cuidadores_crm").success
    after = {e.asset_key.to_user_string(): e
             for e in (ev.event_specific_data for ev in freshness.execute_in_process(instance=hub.instance).all_events
                       if ev.event_type_value == "ASSET_CHECK_EVALUATION")}
    assert after["crm/caregiver_updates"].passed
    assert after["crm/caregiver_updates"].metadata["last_run_status"].value == "SUCCESS"
    assert not after["operacao/schedules"].passed
    assert after["operacao/schedules"].metadata["last_success_at"].value == "never"


def test_partitions_start_at_the_configured_go_live_date_and_its_first_run_has_no_yesterday():
    import subprocess
    import sys

    code = ("from carinho_pipelines.syncs.operacao_financeiro import partitions; "
            "keys = partitions.get_partition_keys(); print(keys[0], len(keys))")
    env = {**__import__("os").environ, "CARINHO_GO_LIVE_DATE": "2026-11-20"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    first, count = out.stdout.split()
    assert first == "2026-11-20" and int(count) == (today() - dt.date(2026, 11, 20)).days + 1
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "CARINHO_GO_LIVE_DATE": "20/11/2026"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "CARINHO_GO_LIVE_DATE must be YYYY-MM-DD" in bad.stderr
    # the 23:00 run of the go-live day invoices that day only (there is no partition before)
    at = dt.datetime.combine(settings.go_live_date(), dt.time(23, 0), tzinfo=SAO_PAULO)
    with dagster.instance_for_test() as instance:
        requests = list(operacao_financeiro_schedule(build_schedule_context(instance=instance,
                                                                            scheduled_execution_time=at)))
    assert [r.partition_key for r in requests] == [settings.go_live_date().isoformat()]
    assert all(r.tags["carinho/launched_by"] == "schedule" for r in requests)
