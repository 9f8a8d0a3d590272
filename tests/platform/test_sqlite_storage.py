"""The embedded default's SQLite storage (carinho_pipelines/platform/sqlite_storage.py):
Dagster's own files and tables, opened once per process instead of once per instance,
so a data folder written by Dagster's stock classes is read as it is, and back."""

import multiprocessing
import os

import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage

from carinho_pipelines.platform import sqlite_storage
from carinho_pipelines.platform.instance import prepare_dagster_home


def _run(run_id: str) -> DagsterRun:
    return DagsterRun(job_name="event_lead_created", run_id=run_id, status=DagsterRunStatus.NOT_STARTED,
                      tags={"carinho/event_id": "7"})


def test_the_embedded_instance_and_what_workers_rebuild_use_the_cached_storage(tmp_path):
    home = prepare_dagster_home(tmp_path / "home", postgres=False, celery=False)
    with DagsterInstance.from_config(str(home)) as inst:
        assert isinstance(inst.run_storage, sqlite_storage.CachedSqliteRunStorage)
        assert isinstance(inst.event_log_storage, sqlite_storage.CachedConsolidatedSqliteEventLogStorage)
        assert isinstance(inst.schedule_storage, sqlite_storage.CachedSqliteScheduleStorage)
        # code servers and run workers rebuild the storage from the instance ref: ours too
        rebuilt = DagsterInstance.from_ref(inst.get_ref())
        assert isinstance(rebuilt.run_storage, sqlite_storage.CachedSqliteRunStorage)
        assert isinstance(rebuilt.schedule_storage, sqlite_storage.CachedSqliteScheduleStorage)
        inst.add_run(_run("cached-1"))
        assert rebuilt.get_run_by_id("cached-1").tags["carinho/event_id"] == "7"


def test_a_data_folder_of_the_stock_classes_is_read_as_it_is_and_back(tmp_path):
    home = prepare_dagster_home(tmp_path / "home", postgres=False, celery=False)
    # what an earlier version of the hub (Dagster's stock classes) left in the folder
    SqliteRunStorage.from_local(str(home / "history")).add_run(_run("stock-1"))
    ConsolidatedSqliteEventLogStorage(str(home / "event_log"))
    with DagsterInstance.from_config(str(home)) as inst:
        assert inst.get_run_by_id("stock-1") is not None
        inst.add_run(_run("cached-2"))
        inst.report_run_failed(inst.get_run_by_id("cached-2"), "test")
    stock = SqliteRunStorage.from_local(str(home / "history"))
    [failed] = stock.get_runs(filters=RunsFilter(run_ids=["cached-2"]))
    assert failed.status == DagsterRunStatus.FAILURE
    assert {r.run_id for r in stock.get_runs()} == {"stock-1", "cached-2"}


def test_one_engine_per_file_and_process_and_a_forked_worker_gets_its_own(tmp_path):
    home = prepare_dagster_home(tmp_path / "home", postgres=False, celery=False)
    with DagsterInstance.from_config(str(home)) as first, DagsterInstance.from_config(str(home)) as second:
        engine = sqlite_storage.shared_engine(first.run_storage._conn_string)
        assert sqlite_storage.shared_engine(second.run_storage._conn_string) is engine
        first.add_run(_run("before-fork"))
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:  # a Celery prefork child: its own engine, the same file
            child_pid, engine_pids, found = pool.apply(_in_child, (str(home),))
        # the child's engines are its own: none of the parent's pooled connections crossed the fork
        assert engine_pids == {child_pid} and found is True
        assert first.get_run_by_id("from-child") is not None
        # and the parent's pool still works after the child used (and closed) its own
        assert first.get_run_by_id("before-fork") is not None


def _in_child(home: str) -> tuple[int, set[int], bool]:
    with DagsterInstance.from_config(home) as inst:
        inst.add_run(_run("from-child"))
        engine = sqlite_storage.shared_engine(inst.run_storage._conn_string)
        with engine.connect() as conn:
            found = conn.execute(sa.text("select count(*) from runs where run_id = 'before-fork'")).scalar() == 1
        return os.getpid(), {pid for pid, _file in sqlite_storage._engines}, found


def test_many_instances_and_reads_reuse_a_few_open_connections(tmp_path):
    """A sensor tick builds an instance and reads: on one file that is a pooled
    connection again, not a new SQLite connection every time."""
    home = prepare_dagster_home(tmp_path / "home", postgres=False, celery=False)
    with DagsterInstance.from_config(str(home)) as inst:
        inst.add_run(_run("pooled"))
        engine = sqlite_storage.shared_engine(inst.run_storage._conn_string)
    opened = []
    sa.event.listen(engine, "connect", lambda *_args: opened.append(1))
    for _ in range(50):
        with DagsterInstance.from_config(str(home)) as inst:
            assert inst.get_run_by_id("pooled") is not None
    assert len(opened) <= 1
