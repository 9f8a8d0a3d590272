"""Dagster's storage on pooled connections (carinho_pipelines/platform/storage.py): the
same data as dagster-postgres's stock storage, a handful of connections instead of one
per statement, and no failure when PostgreSQL drops the pooled connections."""

import multiprocessing

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import DagsterRun
from dagster_postgres import DagsterPostgresStorage

from carinho_pipelines.platform import storage as dagster_storage
from carinho_pipelines.platform.instance import prepare_dagster_home
from tests.conftest import PG_ADMIN_URL
from tests.support import wait_for


@pytest.fixture
def instance(tmp_path, pg_database, monkeypatch):
    url = pg_database("carinho_dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    home = prepare_dagster_home(tmp_path / "home", postgres=True, celery=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as inst:
        yield inst, url


def connects(engine: sa.Engine) -> list[int]:
    """A counter of the DBAPI connections ``engine`` opens from now on."""
    opened = [0]
    sa.event.listen(engine, "connect", lambda *_: opened.__setitem__(0, opened[0] + 1))
    return opened


def test_the_instance_uses_the_pooled_storage_and_so_do_run_workers(instance):
    inst, _url = instance
    assert isinstance(inst.run_storage, dagster_storage.PooledPostgresRunStorage)
    assert isinstance(inst.event_log_storage, dagster_storage.PooledPostgresEventLogStorage)
    # code servers and run workers rebuild the storage from the instance ref: ours too
    rebuilt = DagsterInstance.from_ref(inst.get_ref())
    assert isinstance(rebuilt.run_storage, dagster_storage.PooledPostgresRunStorage)
    assert isinstance(rebuilt.event_log_storage, dagster_storage.PooledPostgresEventLogStorage)
    assert isinstance(rebuilt.schedule_storage, dagster_storage.PooledPostgresScheduleStorage)


def test_runs_written_through_the_pool_are_what_the_stock_storage_reads(instance):
    inst, url = instance
    inst.add_run(DagsterRun(job_name="site_lead_received", run_id="pooled-1", status=DagsterRunStatus.NOT_STARTED,
                            tags={"carinho/event_id": "41"}))
    stock = DagsterPostgresStorage(url)  # a connection per statement: nothing to close
    records = stock.run_storage.get_run_records(RunsFilter(tags={"carinho/event_id": "41"}))
    assert [r.dagster_run.run_id for r in records] == ["pooled-1"]


def test_many_reads_and_instances_reuse_a_few_connections(instance):
    inst, url = instance
    engine = dagster_storage.shared_engine(url)
    opened = connects(engine)
    for _ in range(60):
        inst.get_run_records(RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=5)
        inst.get_runs_count()
    for _ in range(5):  # sensor ticks build a fresh instance each time
        DagsterInstance.from_ref(inst.get_ref()).get_runs_count()
    # the stock storage would have opened a connection per statement (> 125 here)
    assert opened[0] <= dagster_storage.POOL_SIZE + dagster_storage.MAX_OVERFLOW
    assert opened[0] <= 3


def test_connections_postgresql_dropped_are_replaced_not_failed(instance):
    inst, url = instance
    inst.get_runs_count()  # a pooled connection now exists
    database = sa.engine.make_url(url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    others = "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
    with admin.connect() as conn:
        killed = conn.execute(sa.text(f"SELECT count(pg_terminate_backend(pid)) {others}"), {"db": database}).scalar()
        # terminating is asynchronous: the pool's connections are dropped once their backends are gone
        wait_for(lambda: conn.execute(sa.text(f"SELECT count(*) {others}"), {"db": database}).scalar() == 0,
                 timeout=30, what="the terminated backends gone", interval=0.05)
    admin.dispose()
    assert killed >= 1
    inst.add_run(DagsterRun(job_name="payment_received", run_id="after-kill", status=DagsterRunStatus.NOT_STARTED))
    assert inst.get_run_by_id("after-kill") is not None


def _engine_in_child(url: str, queue) -> None:
    engine = dagster_storage.shared_engine(url)
    with engine.connect() as conn:
        queue.put(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar())


def test_a_forked_worker_process_gets_its_own_engine(instance):
    _inst, url = instance
    parent = dagster_storage.shared_engine(url)
    with parent.connect() as conn:
        parent_backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    ctx = multiprocessing.get_context("fork")  # as Celery's prefork pool does
    queue = ctx.Queue()
    child = ctx.Process(target=_engine_in_child, args=(url, queue))
    child.start()
    child_backend = queue.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    # a separate connection: sharing the parent's socket would mix two processes' traffic
    assert child_backend != parent_backend
