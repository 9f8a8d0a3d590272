"""The ``carinho`` command line (stable names: other tooling drives these).

* ``carinho run`` — the whole hub on the embedded default: SQLite, the sandbox
  simulators, the relay and ``dagster dev`` (UI + daemon).
* ``carinho relay`` — the relay only.
* ``carinho db upgrade`` — apply the event store's migrations.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from . import settings
from .instance import REPO_ROOT, prepare_dagster_home


@click.group()
def main() -> None:
    """Carinho Integrações: the integrations hub."""


# -- db -------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The event store."""


@db.command("upgrade")
@click.option("--url", envvar="CARINHO_DATABASE_URL", default=None, help="defaults to CARINHO_DATABASE_URL / SQLite")
def db_upgrade(url: str | None) -> None:
    """Apply the event store's migrations (idempotent)."""
    from relay.migrate import upgrade

    upgrade(url)
    click.echo(f"event store at revision head ({_safe_url(url or settings.database_url())})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- apikey ---------------------------------------------------------------------


@main.group()
def apikey() -> None:
    """Operations API keys (stored hashed)."""


@apikey.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help="comma-separated, e.g. events:read,dlq:read (or *)")
def apikey_create(name: str, scopes: str) -> None:
    """Create a key; the key is printed alone on the last line, once."""
    from relay.apikeys import create_key
    from relay.store import EventStore

    try:
        key = create_key(EventStore(), name, [s.strip() for s in scopes.split(",") if s.strip()])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created API key {name!r} with scopes {scopes}; store it now, it is not shown again:")
    click.echo(key)


@apikey.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke a stored key (it stops working at once)."""
    from relay.apikeys import revoke_key
    from relay.store import EventStore

    if not revoke_key(EventStore(), name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


@apikey.command("list")
def apikey_list() -> None:
    """Stored keys (names and scopes, never the keys)."""
    from relay.apikeys import list_keys
    from relay.store import EventStore

    for row in list_keys(EventStore()):
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
        click.echo(f"{row['name']}\t{row['scopes']}\t{state}")


# -- dlq, events, sync, status: the ops CLI over the operations API (ops_cli.py) -----

from .ops_cli import register as _register_ops_cli  # noqa: E402

_register_ops_cli(main)


# -- worker ---------------------------------------------------------------------

#: worker processes per queue group on a 2-core machine; integrations-high gets its own
WORKER_CONCURRENCY = {"integrations-high": 2, "integrations": 2, "integrations-low": 1}


@main.command()
@click.option("--queues", required=True, help="comma-separated carinho queues, e.g. integrations-high")
@click.option("--concurrency", type=int, default=None, help="worker processes (default by queue)")
def worker(queues: str, concurrency: int | None) -> None:
    """A warm run worker (Celery) for some queues; needs CARINHO_CELERY_BROKER_URL."""
    from .queues import QUEUES

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise click.ClickException(f"unknown queue(s) {unknown}; known: {', '.join(QUEUES)}")
    if not os.environ.get("CARINHO_CELERY_BROKER_URL"):
        raise click.ClickException("CARINHO_CELERY_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    procs = concurrency or WORKER_CONCURRENCY.get(names[0], 1)
    # lower-priority workers yield the CPU to integrations-high's when it is scarce
    os.nice(min(QUEUES[name].niceness for name in names))
    celery = Path(sys.executable).with_name("celery")
    args = [str(celery), "-A", "carinho_pipelines.celery_app", "worker", "--pool", "prefork",
            "--concurrency", str(procs), "--prefetch-multiplier", "1", "--loglevel", "INFO",
            "-n", f"carinho-{'+'.join(names)}@%h", "--without-gossip", "--without-mingle",
            "-Q", ",".join(names)]  # one -Q with a list: a second -Q would replace the first
    os.execv(args[0], args)


# -- relay ----------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def relay(host: str, port: int, workers: int) -> None:
    """Serve the relay (webhooks + operations API) with uvicorn."""
    import uvicorn

    from relay import logs

    logs.install()
    uvicorn.run("relay.app:app", host=host, port=port, workers=workers, log_level="info")


# -- run ------------------------------------------------------------------------


def _wait_http(url: str, timeout: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@main.command()
@click.option("--relay-port", default=8000, show_default=True, type=int)
@click.option("--dagster-port", default=3000, show_default=True, type=int)
@click.option("--sandbox-port", default=8100, show_default=True, type=int, help="first port of the sandbox")
@click.option("--sandbox/--no-sandbox", default=True, show_default=True, help="point the hub at the simulators")
@click.option("--seed/--no-seed", default=True, show_default=True, help="seed the simulators with a day of data")
def run(relay_port: int, dagster_port: int, sandbox_port: int, sandbox: bool, seed: bool) -> None:
    """The whole hub on the embedded default: SQLite + simulators + relay + Dagster UI/daemon."""
    data = Path(os.environ.setdefault("CARINHO_DATA_DIR", str(REPO_ROOT / ".carinho")))
    data.mkdir(parents=True, exist_ok=True)
    env = os.environ
    env.setdefault("DAGSTER_HOME", str(data / "dagster_home"))
    prepare_dagster_home(Path(env["DAGSTER_HOME"]))
    env.setdefault("CARINHO_DAGSTER_GRAPHQL_URL", f"http://127.0.0.1:{dagster_port}/graphql")
    # the relay submits each event's run at once; the sensor stays the safety net
    env.setdefault("CARINHO_DIRECT_SUBMIT", "true")
    relay_url = f"http://127.0.0.1:{relay_port}"

    sb = mailbox = None
    if sandbox:
        import secrets

        from .sandbox import Sandbox
        from .sandbox.mailbox import Mailbox

        sb = Sandbox(host="127.0.0.1", base_port=sandbox_port)
        sb.start()
        env.update(sb.env())
        # e-mails land in the data folder (a local SMTP server), not nowhere
        mailbox = Mailbox(data / "mailbox", port=sandbox_port + 10).start()
        env.update(mailbox.env())
        secret_file = data / "feedback_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
        env.setdefault("CARINHO_FEEDBACK_SECRET", secret_file.read_text().strip())
        webhook = f"{relay_url}/webhooks/whatsapp?token={env['ZAPI_WEBHOOK_TOKEN']}"
        sb.zapi.set_webhook(webhook)
        if seed:
            sb.seed_default()

    from relay.migrate import upgrade

    upgrade()
    procs: list[subprocess.Popen] = []
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "carinho_pipelines.cli", "relay", "--port", str(relay_port)],
            cwd=REPO_ROOT,
            env=env,
        )
    )
    if env.get("CARINHO_CELERY_BROKER_URL"):
        from .instance import celery_worker_commands

        for command in celery_worker_commands():
            procs.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env))
    dagster = Path(sys.executable).with_name("dagster")
    procs.append(
        subprocess.Popen(
            [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(dagster_port)],
            cwd=REPO_ROOT,
            env=env,
        )
    )

    def stop(*_args: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if sb is not None:
            sb.stop()
        if mailbox is not None:
            mailbox.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    ok = _wait_http(f"{relay_url}/health", 60) and _wait_http(f"http://127.0.0.1:{dagster_port}/server_info", 180)
    click.echo("")
    click.echo("Carinho Integrações is up" if ok else "Carinho Integrações started (some parts are still starting)")
    click.echo(f"  relay (webhooks, ops API):  {relay_url}   health: {relay_url}/health/detailed")
    click.echo(f"  Dagster UI:                 http://127.0.0.1:{dagster_port}")
    if sb is not None:
        click.echo(f"  sandbox control:            {sb.control_url}")
        click.echo(f"  play a day of traffic:      carinho sandbox demo --hub-url {relay_url}")
        click.echo(f"  e-mails sent by the hub:    {data / 'mailbox'} (SMTP on 127.0.0.1:{sandbox_port + 10})")
    click.echo(f"  data folder:                {data}")
    click.echo("Ctrl-C stops everything.")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        click.echo("a component exited; stopping", err=True)
    except KeyboardInterrupt:
        pass
    stop()


def _register_optional() -> None:
    """Subcommands owned by other modules, registered when importable."""
    try:
        from .sandbox.cli import sandbox as sandbox_group
    except ImportError:
        return
    main.add_command(sandbox_group)


_register_optional()

if __name__ == "__main__":
    main()
