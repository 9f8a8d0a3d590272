"""The ``carinho`` command line (stable names: other tooling drives these).

* ``carinho run`` — the whole hub on the embedded default: SQLite, the sandbox
  simulators, the relay and ``dagster dev`` (UI + daemon).
* ``carinho relay`` — the relay only.
* ``carinho db upgrade`` — apply the event store's migrations.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from carinho_pipelines.kernel import settings
from carinho_pipelines.platform.instance import prepare_dagster_home


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
    from carinho_pipelines.store.migrate import upgrade

    upgrade(url)
    click.echo(f"event store at revision head ({_safe_url(url or settings.database_url())})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- instance -------------------------------------------------------------------


@main.group()
def instance() -> None:
    """The Dagster instance ($DAGSTER_HOME)."""


@instance.command("limits")
def instance_limits() -> None:
    """Write each destination's concurrency (destinations/limits.py) as its Dagster pool's
    limit (idempotent; run after `dagster instance migrate`)."""
    from dagster import DagsterInstance

    from carinho_pipelines.destinations.limits import apply_pool_limits

    with DagsterInstance.get() as dagster_instance:
        applied = apply_pool_limits(dagster_instance)
    click.echo("pool limits: " + ", ".join(f"{pool}={n}" for pool, n in sorted(applied.items())))


# -- apikey ---------------------------------------------------------------------


@main.group()
def apikey() -> None:
    """Operations API keys (stored hashed)."""


@apikey.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help="comma-separated, e.g. events:read,dlq:read (or *)")
def apikey_create(name: str, scopes: str) -> None:
    """Create a key; the key is printed alone on the last line, once."""
    from carinho_pipelines.store.apikeys import create_key
    from carinho_pipelines.store import EventStore

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
    from carinho_pipelines.store.apikeys import revoke_key
    from carinho_pipelines.store import EventStore

    if not revoke_key(EventStore(), name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


@apikey.command("list")
def apikey_list() -> None:
    """Stored keys (names and scopes, never the keys)."""
    from carinho_pipelines.store.apikeys import list_keys
    from carinho_pipelines.store import EventStore

    for row in list_keys(EventStore()):
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
        click.echo(f"{row['name']}\t{row['scopes']}\t{state}")


# -- dlq, events, sync, status: the ops CLI over the operations API (ops_cli.py) -----

from .ops_cli import register as _register_ops_cli  # noqa: E402

_register_ops_cli(main)


# -- worker ---------------------------------------------------------------------

#: worker processes per queue group on a 2-core machine, at most; integrations-high gets
#: its own. Celery's autoscaler forks them (from the warm parent) as runs arrive and
#: lets them go after 30 s without work, so a burst gets 4 + 3 + 1 processes and the
#: idle stack does not pay for them (benchmarks/README.md).
WORKER_CONCURRENCY = {"integrations-high": 4, "integrations": 3, "integrations-low": 1}
#: processes a group keeps while idle: integrations-high one, so that a lead's run never
#: waits for a fork; the others none (~125 MB each; their first run after 30 s idle
#: waits for a fork from the warm parent, a fraction of a second inside 30 s SLAs)
WORKER_IDLE_PROCESSES = {"integrations-high": 1, "integrations": 0, "integrations-low": 0}


def worker_node_prefix(queues: list[str]) -> str:
    """A worker's Celery node name is ``<this>.<pid>@<host>``: the pid (``carinho worker``
    execs Celery, so it is the worker's own) keeps two workers of one host apart and lets
    ``carinho run`` ping exactly the workers it started."""
    return f"carinho-{'+'.join(queues)}"


def _worker_id() -> str:
    """The node name's middle part: ``CARINHO_WORKER_ID`` when set (a container, where
    every worker may share the host's name with host networking and be pid 1), else the pid."""
    return os.environ.get("CARINHO_WORKER_ID") or str(os.getpid())


@main.command()
@click.option("--queues", required=True, help="comma-separated carinho queues, e.g. integrations-high")
@click.option("--concurrency", type=int, default=None,
              help="a fixed number of worker processes (default: by queue, autoscaled from 1 or 0 while idle to a maximum)")
def worker(queues: str, concurrency: int | None) -> None:
    """A warm run worker (Celery) for some queues; needs CARINHO_CELERY_BROKER_URL."""
    from carinho_pipelines.kernel.queues import QUEUES

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise click.ClickException(f"unknown queue(s) {unknown}; known: {', '.join(QUEUES)}")
    if not settings.current().celery_broker_url:
        raise click.ClickException("CARINHO_CELERY_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    most = WORKER_CONCURRENCY.get(names[0], 1)
    fewest = WORKER_IDLE_PROCESSES.get(names[0], 1)
    size = ["--concurrency", str(concurrency)] if concurrency else (
        ["--autoscale", f"{most},{fewest}"] if (most, fewest) != (1, 1) else ["--concurrency", "1"])
    # lower-priority workers yield the CPU to integrations-high's when it is scarce
    os.nice(min(QUEUES[name].niceness for name in names))
    celery = Path(sys.executable).with_name("celery")
    args = [str(celery), "-A", "carinho_pipelines.platform.celery_app", "worker", "--pool", "prefork",
            *size, "--prefetch-multiplier", "1", "--loglevel", "INFO",
            "-n", f"{worker_node_prefix(names)}.{_worker_id()}@%h", "--without-gossip", "--without-mingle",
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

    # by name, not imported: the relay sits above this package (its app installs its log redaction)
    uvicorn.run("relay.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


# -- run ------------------------------------------------------------------------

#: ``CARINHO_RUN_LAUNCHER``: ``celery`` (warm workers, the default) or ``process``
#: (Dagster's default launcher: a fresh process per run, no broker, no workers)
RUN_LAUNCHERS = ("celery", "process")
CODE_LOCATION = "carinho_pipelines"


@main.command()
@click.option("--relay-port", default=8000, show_default=True, type=int)
@click.option("--dagster-port", default=3000, show_default=True, type=int, help="the Dagster UI (webserver)")
@click.option("--code-server-port", default=4266, show_default=True, type=int)
@click.option("--broker-port", default=6380, show_default=True, type=int,
              help="the embedded broker (unused when CARINHO_CELERY_BROKER_URL is set)")
@click.option("--sandbox-port", default=8100, show_default=True, type=int,
              help="first of the sandbox's 11 ports (simulators, control, SMTP mailbox)")
@click.option("--sandbox/--no-sandbox", default=True, show_default=True, help="point the hub at the simulators")
@click.option("--seed/--no-seed", default=True, show_default=True, help="seed the simulators with a day of data")
@click.option("--verbose", is_flag=True, help="every component's log on the terminal instead of <data>/logs/")
def run(relay_port: int, dagster_port: int, code_server_port: int, broker_port: int, sandbox_port: int,
        sandbox: bool, seed: bool, verbose: bool) -> None:
    """The whole hub on the embedded default: SQLite + simulators + relay + Dagster + warm workers."""
    from . import supervisor as sv

    launcher = settings.current().run_launcher.strip().lower()
    if launcher not in RUN_LAUNCHERS:
        raise click.ClickException(f"CARINHO_RUN_LAUNCHER must be one of {', '.join(RUN_LAUNCHERS)}, not {launcher!r}")
    embedded_broker = launcher == "celery" and not settings.current().celery_broker_url
    ports = [(relay_port, "relay", "--relay-port"), (dagster_port, "Dagster UI", "--dagster-port"),
             (code_server_port, "code server", "--code-server-port")]
    if embedded_broker:
        ports.append((broker_port, "embedded broker", "--broker-port"))
    sandbox_hub = _sandbox_plugin() if sandbox else None
    if sandbox_hub is not None:
        ports += [(port, name, "--sandbox-port") for port, name in sandbox_hub.ports(sandbox_port)]
    try:
        sv.check_ports(ports)
    except sv.PortInUse as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None

    data = settings.data_dir()
    data.mkdir(parents=True, exist_ok=True)
    sup = sv.Supervisor(os.environ, cwd=data, log_dir=data / "logs", verbose=verbose, echo=click.echo)
    in_process: list[object] = []  # the sandbox and its mailbox (threads of this process)
    sv.stop_on_signals()
    try:
        summary = _start_hub(sv, sup, in_process, launcher, embedded_broker, relay_port, dagster_port,
                             code_server_port, broker_port, sandbox_port, sandbox_hub, seed)
        click.echo(summary)
        sup.watch()
    except KeyboardInterrupt:
        click.echo("\nstopping…")
        code = 0
    except sv.ComponentFailed as exc:
        click.echo(f"{exc}; stopping the hub", err=True)
        code = 1
    except BaseException:
        _stop_hub(sup, in_process)  # an unexpected error: stop what started, then show it
        raise
    _stop_hub(sup, in_process)
    if code == 0:
        click.echo("stopped")
    raise SystemExit(code)


def _data_secret(path: Path) -> str:
    """A random secret kept in the data folder (made on first use, owner-only)."""
    import secrets

    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _stop_hub(sup, in_process: list[object]) -> None:
    # a second Ctrl-C while stopping must not leave half of the hub running
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sup.stop()
    for thing in reversed(in_process):
        try:
            thing.stop()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - one that never started has nothing to stop
            pass


def _start_hub(sv, sup, in_process: list[object], launcher: str, embedded_broker: bool, relay_port: int,
               dagster_port: int, code_server_port: int, broker_port: int, sandbox_port: int, sandbox_hub,
               seed: bool) -> str:
    """Start everything under ``sup``; returns the summary to print."""
    from carinho_pipelines.platform.embedded_broker import broker_url, valkey_command
    from carinho_pipelines.platform.instance import celery_worker_commands

    data = sup.cwd
    env = sup.env
    env["CARINHO_DATA_DIR"] = str(data)
    env.setdefault("DAGSTER_HOME", str(data / "dagster_home"))
    graphql_url = f"http://127.0.0.1:{dagster_port}/graphql"
    env["CARINHO_DAGSTER_GRAPHQL_URL"] = graphql_url  # this hub's webserver, never another's
    env.setdefault("CARINHO_DIRECT_SUBMIT", "true")  # the relay submits each run; the sensor is the safety net
    # search and erasure by person: the keyed hashes' secret, made once per data folder
    env.setdefault("CARINHO_PERSON_KEY_SECRET", _data_secret(data / "person_key_secret"))
    env["CARINHO_CODE_SERVER_HOST"], env["CARINHO_CODE_SERVER_PORT"] = "127.0.0.1", str(code_server_port)
    # the children's Python warnings (Dagster's supersession and beta notices) go to their logs
    env.setdefault("PYTHONWARNINGS", "ignore")
    if launcher == "celery":
        env.setdefault("CARINHO_CELERY_BROKER_URL", broker_url(broker_port))
    else:
        env.pop("CARINHO_CELERY_BROKER_URL", None)
    prepare_dagster_home(Path(env["DAGSTER_HOME"]), celery=launcher == "celery")
    workspace = data / "workspace.yaml"
    workspace.write_text(_CODE_SERVER_WORKSPACE)
    relay_url = f"http://127.0.0.1:{relay_port}"
    lines = ["", "Carinho Integrações is up"]

    sandbox_control = None
    if sandbox_hub is not None:
        sandbox_control = sandbox_hub.start(data, env, relay_url, sandbox_port, seed, in_process, click.echo)

    from carinho_pipelines.store.migrate import upgrade

    upgrade()
    api_key = _operations_key(data)

    # Dagster's storage is created (or migrated) once, before its processes start: on a
    # fresh SQLite instance several of them would race to create the same tables
    sup.run_once("Dagster storage", [sv.python_bin("dagster"), "instance", "migrate"])
    sup.run_once("destination limits", [sv.python_bin("carinho"), "instance", "limits"])
    broker = env.get("CARINHO_CELERY_BROKER_URL")
    if embedded_broker:
        sup.start(sv.Component("broker", valkey_command(broker_port, data / "broker"), sv.redis_ping(broker),
                               f"embedded Valkey on 127.0.0.1:{broker_port}"))
    elif broker:
        from sqlalchemy.engine import make_url

        click.echo(f"  · broker: {make_url(broker).render_as_string(hide_password=True)} (CARINHO_CELERY_BROKER_URL)")
    sup.start(sv.Component(
        "code server",
        [sv.python_bin("dagster"), "api", "grpc", "-m", "carinho_pipelines.definitions", "--location-name",
         CODE_LOCATION, "-h", "127.0.0.1", "-p", str(code_server_port)],
        sv.grpc_serving("127.0.0.1", code_server_port), f"127.0.0.1:{code_server_port}"))
    sup.start(sv.Component("relay", [sv.python_bin("carinho"), "relay", "--port", str(relay_port)],
                           sv.http_ok(f"{relay_url}/health"), relay_url))
    sup.start(sv.Component(
        "Dagster webserver",
        [sv.python_bin("dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(dagster_port)],
        sv.code_location_loaded(graphql_url, CODE_LOCATION), f"http://127.0.0.1:{dagster_port}"))
    sup.start(sv.Component("Dagster daemon", [sv.python_bin("dagster-daemon"), "run", "-w", str(workspace)],
                           sv.daemons_healthy(graphql_url, time.time()), "schedules, sensors, run queue"))
    if launcher == "celery":
        for command in celery_worker_commands():
            queues = command[command.index("--queues") + 1]
            component = sv.Component(f"worker {queues}", command, lambda: False, "warm run worker")
            sup.start(component)
            component.healthy = sv.celery_worker_answers(broker, f"{worker_node_prefix(queues.split(','))}"
                                                                 f".{component.proc.pid}@")
    sup.wait_healthy()

    site_token = env.get("CARINHO_SITE_TOKEN", "<CARINHO_SITE_TOKEN>")
    lines += [
        f"  relay (webhooks, ops API):  {relay_url}   health: {relay_url}/health/detailed",
        f"  Dagster UI:                 http://127.0.0.1:{dagster_port}",
        f"  run launcher:               {'warm Celery workers' if launcher == 'celery' else 'a process per run'}",
        f"  operations API key:         {api_key}   (also in {data / 'api_key'})",
    ]
    if sandbox_control is not None:
        lines += [
            f"  sandbox control:            {sandbox_control}",
            f"  e-mails sent by the hub:    {data / 'mailbox'}",
            "  post a site lead:",
            f"    curl -s -X POST {relay_url}/webhooks/site/lead -H 'Authorization: Bearer {site_token}' "
            "-H 'Content-Type: application/json' "
            "-d '{\"name\": \"Maria Souza\", \"phone\": \"(11) 91234-5678\", \"utm_source\": \"google\"}'",
            f"  play a day of traffic:      {sv.python_bin('carinho')} sandbox demo --hub-url {relay_url}",
        ]
    lines += [f"  data folder:                {data}   (logs in {data / 'logs'})", "Ctrl-C stops everything."]
    return "\n".join(lines)


_CODE_SERVER_WORKSPACE = """\
# Written by `carinho run`: the webserver and the daemon share one standalone code
# server (as deploy/workspace.code-server.yaml in production).
load_from:
  - grpc_server:
      host:
        env: CARINHO_CODE_SERVER_HOST
      port:
        env: CARINHO_CODE_SERVER_PORT
      location_name: carinho_pipelines
"""


def _operations_key(data: Path) -> str:
    """The embedded default's operations API key (all scopes): created at the first
    start, kept in the data folder (mode 600), recreated if the store lost it."""
    from carinho_pipelines.store.apikeys import create_key, list_keys, lookup, revoke_key
    from carinho_pipelines.store import EventStore

    path = data / "api_key"
    store = EventStore()
    try:
        if path.exists():
            key = path.read_text().strip()
            if key and lookup(store, key) is not None:
                return key
        if any(row["name"] == "carinho-run" and not row["revoked_at"] for row in list_keys(store)):
            revoke_key(store, "carinho-run")
        key = create_key(store, "carinho-run", ["*"])
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key
    finally:
        store.engine.dispose()


#: entry-point groups of optional packages (the sandbox: ``pip install -e ./sandbox``)
COMMANDS_GROUP = "carinho.commands"
SANDBOX_GROUP = "carinho.sandbox"


def _sandbox_plugin():
    """The sandbox's hub hook (``carinho_sandbox.hub``); a clear error when it is not installed."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=SANDBOX_GROUP):
        return ep.load()
    raise click.ClickException("the sandbox is not installed (pip install -e ./sandbox); "
                               "pass --no-sandbox to run the hub against real systems")


def _register_optional() -> None:
    """Subcommands of optional packages (``carinho sandbox``), registered when installed."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=COMMANDS_GROUP):
        try:
            main.add_command(ep.load(), ep.name)
        except ImportError:  # installed metadata without its code (a stale egg-link)
            continue


_register_optional()

if __name__ == "__main__":
    main()
