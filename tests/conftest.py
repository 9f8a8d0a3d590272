"""Shared fixtures: PostgreSQL databases, the relay on a real port, hub credentials."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa

from carinho_pipelines.kernel import settings

#: the suite fails if a process it started outlives it (tests/leftovers.py)
pytest_plugins = ["tests.leftovers"]

#: an admin connection to the PostgreSQL server the tests create their databases on
PG_ADMIN_URL = os.environ.get("CARINHO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

TOKENS = {system: f"test-{system}-token" for system in settings.SYSTEMS}
ZAPI_WEBHOOK_TOKEN = "test-zapi-webhook-token"
ZAPI_INSTANCE_ID = "TESTINSTANCE00000000000000000001"


@pytest.fixture(scope="session")
def pg_database() -> Iterator:
    """A factory of fresh PostgreSQL databases, dropped at the end of the session."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:  # the suite needs PostgreSQL: fail, never skip
        raise RuntimeError(f"PostgreSQL is required for the tests ({PG_ADMIN_URL}): {exc}") from exc
    created: list[str] = []
    template: list[str] = []  # the migrated event store, made once, copied per test

    def url_of(name: str) -> str:
        return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def make(prefix: str = "carinho_test", *, migrated: bool = False) -> str:
        """An empty database; with ``migrated``, a copy of a migrated event store
        (``CREATE DATABASE … TEMPLATE``: ~0.04 s instead of ~0.17 s of migrations)."""
        if migrated and not template:
            from carinho_pipelines.store.migrate import upgrade

            url = make("carinho_template")
            upgrade(url)
            template.append(sa.engine.make_url(url).database)
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template[0]}"' if migrated else "")))
        created.append(name)
        return url_of(name)

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sandbox():
    """The simulators (real HTTP servers), shared by the session; fixtures reset them."""
    from carinho_sandbox import Sandbox

    sb = Sandbox(base_port=0).start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def smtp():
    """A real SMTP server (aiosmtpd) keeping what it receives: ``(sink, port)``."""
    from aiosmtpd.controller import Controller

    from tests.support import MailSink, free_port

    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


#: settings the end-to-end stack shortens for its session (tests/e2e/conftest.py); a test
#: outside it gets the defaults, since settings are read when used, not at import
E2E_TUNED = ("CARINHO_BREAKER_OPEN_SECONDS", "CARINHO_REDRIVE_INTERVAL_SECONDS", "CARINHO_DIRECT_SUBMIT",
             "CARINHO_SUBMIT_CLAIM_SECONDS")


@pytest.fixture(autouse=True)
def default_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside tests/e2e, the hub's tuned settings are back to their defaults."""
    if "/e2e/" in str(request.node.path):
        return
    for key in E2E_TUNED:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials the relay accepts: one token per system, the Z-API webhook token."""
    env = {f"CARINHO_{s.upper()}_TOKEN": t for s, t in TOKENS.items()}
    env.update(ZAPI_WEBHOOK_TOKEN=ZAPI_WEBHOOK_TOKEN, ZAPI_INSTANCE_ID=ZAPI_INSTANCE_ID)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for s in settings.SYSTEMS:
        monkeypatch.delenv(f"CARINHO_{s.upper()}_WEBHOOK_SECRET", raising=False)
    for key in ("ZAPI_BASE_URL", "ZAPI_TOKEN", "DAGSTER_HOME"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path, pg_database) -> str:
    """A migrated event store, on both supported databases."""
    from carinho_pipelines.store.migrate import upgrade

    if request.param == "postgresql":
        return pg_database(migrated=True)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)
    return url


@pytest.fixture
def redis_broker():
    """A Redis of its own on a free port (a Celery broker): ``(url, client)``."""
    import shutil
    import subprocess

    import redis

    from tests.support import free_port, wait_for

    server = shutil.which("redis-server")
    assert server, "redis-server is required for the Celery tests"
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis(port=port)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, timeout=30, what="the broker answering", interval=0.05)
        yield f"redis://127.0.0.1:{port}/0", client
    finally:
        client.close()
        proc.kill()
        proc.wait(timeout=10)
