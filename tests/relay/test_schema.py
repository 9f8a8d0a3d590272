"""Migrations, the schema, the OpenAPI document, the instance config."""

import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from carinho_pipelines.cli import main
from carinho_pipelines.platform.instance import dagster_yaml_text, instance_config
from carinho_pipelines.kernel.queues import QUEUES
from carinho_pipelines.store.migrate import upgrade
from carinho_pipelines.store import EventStore
from carinho_pipelines.store.tables import metadata


def test_migrations_build_exactly_the_declared_schema(store_url):
    upgrade(store_url)  # idempotent
    store = EventStore(store_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.engine.dispose()
    assert diff == []


def test_cli_db_upgrade_creates_the_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["db", "upgrade", "--url", url])
    assert result.exit_code == 0, result.output
    assert "revision head" in result.output
    import sqlalchemy as sa

    assert "events" in sa.inspect(sa.create_engine(url)).get_table_names()


def test_openapi_lists_every_route(relay):
    schema = relay.http.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ("/webhooks/whatsapp", "/webhooks/whatsapp/status", "/webhooks/site/lead",
                 "/webhooks/crm/client-registered", "/webhooks/operacao/service-completed",
                 "/webhooks/financeiro/payment", "/webhooks/financeiro/payout", "/webhooks/cuidadores/feedback",
                 "/webhooks/systems/{system}", "/api/events", "/api/events/{id}", "/health", "/health/detailed"):
        assert path in paths, path
    assert "422" in paths["/webhooks/site/lead"]["post"]["responses"]
    assert set(paths["/api/events"]) == {"get", "post"}


def test_run_queue_limits_in_dagster_yaml_match_the_queue_table():
    config = yaml.safe_load(dagster_yaml_text())
    limits = {
        item["value"]: item["limit"]
        for item in config["run_coordinator"]["config"]["tag_concurrency_limits"]
        if item["key"] == "carinho/queue"
    }
    assert limits == {name: q.concurrency for name, q in QUEUES.items()}
    assert "storage" not in instance_config(postgres=False)
    assert instance_config(postgres=True)["storage"]["custom"]["config"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}


def test_with_warm_workers_the_run_queue_feeds_the_broker_several_runs_per_slot(monkeypatch):
    monkeypatch.delenv("CARINHO_CELERY_QUEUE_FACTOR", raising=False)
    plain = instance_config(postgres=True)["run_coordinator"]["config"]
    fed = instance_config(postgres=True, celery=True)["run_coordinator"]["config"]
    by_queue = lambda config: {l["value"]: l["limit"] for l in config["tag_concurrency_limits"]  # noqa: E731,E741
                               if l["key"] == "carinho/queue"}
    assert by_queue(fed) == {name: 4 * limit for name, limit in by_queue(plain).items()}
    assert fed["max_concurrent_runs"] == 4 * plain["max_concurrent_runs"]
    # one run of a sync at a time, workers or not
    assert [l for l in fed["tag_concurrency_limits"] if l["key"] == "carinho/sync"][0]["limit"] == 1  # noqa: E741
    monkeypatch.setenv("CARINHO_CELERY_QUEUE_FACTOR", "2")
    fed = instance_config(postgres=True, celery=True)["run_coordinator"]["config"]
    assert by_queue(fed)["integrations-high"] == 2 * by_queue(plain)["integrations-high"]


def test_the_run_start_timeout_is_dagster_yamls_unless_the_environment_sets_one(monkeypatch):
    monkeypatch.delenv("CARINHO_RUN_START_TIMEOUT_SECONDS", raising=False)
    assert instance_config(postgres=True)["run_monitoring"]["start_timeout_seconds"] == 180
    monkeypatch.setenv("CARINHO_RUN_START_TIMEOUT_SECONDS", "60")
    assert instance_config(postgres=True, celery=True)["run_monitoring"]["start_timeout_seconds"] == 60
