"""The ``carinho run`` supervisor: the processes of the hub, started, watched, stopped.

The embedded default runs what production runs (ARCHITECTURE.md, "One path"): the
relay, one standalone code server, the Dagster webserver, exactly one daemon and the
three ``carinho worker`` groups behind dagster-celery's launcher, plus a broker (the
embedded Valkey server unless ``CARINHO_CELERY_BROKER_URL`` names one). Every
component is a child process in a session of its own, so Ctrl-C reaches only the
supervisor, which stops them in order. The supervisor says the hub is up only when
each of its *own* children is alive and answers its health check, and if any of
them dies later it stops the rest and exits non-zero, naming it.

No library does this better here: honcho/supervisord start processes but know
nothing of the hub's health checks (a GraphQL query for the daemon, a Celery ping
for a worker), and either would be one more dependency for ~200 lines.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: how long a component may take to answer its health check at start
START_TIMEOUT = 180.0
#: how long a component may take to exit after SIGTERM before it is killed
STOP_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1


class PortInUse(Exception):
    """A port the hub needs is taken: ``str()`` is the one line to print."""


class ComponentFailed(Exception):
    """A component died or never became healthy: ``str()`` names it."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers themselves bind: a port in TIME_WAIT is free, a listener is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(ports: list[tuple[int, str, str]]) -> None:
    """``ports``: (port, what, the option that moves it). Raises :class:`PortInUse`."""
    for port, what, option in ports:
        if port_in_use(port):
            raise PortInUse(f"port {port} ({what}) is in use; pass {option}")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, whatever kills it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # pragma: no cover - not Linux
        pass


@dataclass
class Component:
    name: str
    argv: list[str]
    #: True once the component answers; must not raise
    healthy: Callable[[], bool]
    describe: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Start :class:`Component` s, wait until each is healthy, watch them, stop them."""

    def __init__(self, env: dict[str, str], cwd: Path, log_dir: Path, verbose: bool,
                 echo: Callable[[str], None]) -> None:
        self.env, self.cwd, self.log_dir, self.verbose, self.echo = env, cwd, log_dir, verbose, echo
        self.components: list[Component] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, component: Component) -> Path:
        return self.log_dir / f"{component.name.replace(' ', '-')}.log"

    def start(self, component: Component) -> None:
        if self.verbose:
            out = None
        else:
            out = open(self.log_path(component), "ab")  # noqa: SIM115 - owned by the child from here on
        component.proc = subprocess.Popen(
            component.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )
        if out is not None:
            out.close()
        self.components.append(component)

    def run_once(self, name: str, argv: list[str], timeout: float = START_TIMEOUT) -> None:
        """A one-shot step (a migration) that must succeed before the components start."""
        log = self.log_dir / f"{name.replace(' ', '-')}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=None if self.verbose else out, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
            try:
                code = proc.wait(timeout=timeout)
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        if code != 0:
            raise ComponentFailed(f"{name} failed with status {code}; see {log}")
        self.echo(f"  ✓ {name:<32} ready")

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Each component in start order: alive and answering; one line each."""
        deadline = time.monotonic() + timeout
        for component in self.components:
            while True:
                self.raise_if_dead()
                if component.healthy():
                    break
                if time.monotonic() > deadline:
                    raise ComponentFailed(
                        f"{component.name} did not become healthy within {timeout:.0f} s; "
                        f"see {self.log_path(component)}")
                time.sleep(0.25)
            self.echo(f"  ✓ {component.name:<32} {component.describe}")

    def raise_if_dead(self) -> None:
        for component in self.components:
            code = component.proc.poll() if component.proc else None
            if code is not None:
                where = "" if self.verbose else f"; its log: {self.log_path(component)}"
                raise ComponentFailed(f"{component.name} exited with status {code}{where}")

    def watch(self, interval: float = 1.0) -> None:
        """Until a component dies (raises :class:`ComponentFailed`)."""
        while True:
            self.raise_if_dead()
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM in reverse start order (workers drain before the broker goes), then
        SIGKILL whatever is still there after :data:`STOP_TIMEOUT`."""
        for component in reversed(self.components):
            if component.alive():
                try:
                    os.killpg(component.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for component in reversed(self.components):
            if component.proc is None:
                continue
            try:
                component.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # the whole session: a component's own children (prefork pool, run processes)
            try:
                os.killpg(component.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            component.proc.wait()


# -- health checks (none imports Dagster: the supervisor stays small) ---------------


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def graphql(url: str, query: str) -> dict | None:
    try:
        resp = httpx.post(url, json={"query": query}, timeout=5)
        return resp.json().get("data") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def code_location_loaded(graphql_url: str, location: str) -> Callable[[], bool]:
    """The webserver is up and has loaded the code location from the code server."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus " \
            "locationOrLoadError { __typename } } } } }"

    def check() -> bool:
        data = graphql(graphql_url, query)
        entries = ((data or {}).get("workspaceOrError") or {}).get("locationEntries") or []
        return any(e["name"] == location and e["loadStatus"] == "LOADED"
                   and (e.get("locationOrLoadError") or {}).get("__typename") == "RepositoryLocation"
                   for e in entries)

    return check


def daemons_healthy(graphql_url: str, since: float) -> Callable[[], bool]:
    """Every required daemon has sent a heartbeat since ``since`` (this daemon's, not
    one left in the instance by an earlier start)."""
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy " \
            "lastHeartbeatTime } } } }"

    def check() -> bool:
        data = graphql(graphql_url, query)
        statuses = (((data or {}).get("instance") or {}).get("daemonHealth") or {}).get("allDaemonStatuses") or []
        required = [s for s in statuses if s["required"]]
        return bool(required) and all(s["healthy"] and (s["lastHeartbeatTime"] or 0) >= since for s in required)

    return check


def grpc_serving(host: str, port: int) -> Callable[[], bool]:
    """The code server answers the standard gRPC health check."""

    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(f"{host}:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    return check


def redis_ping(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    return check


def celery_worker_answers(broker: str, node_prefix: str) -> Callable[[], bool]:
    """A Celery worker whose node name starts with ``node_prefix`` answers a ping."""
    app = None

    def check() -> bool:
        nonlocal app
        from celery import Celery

        if app is None:
            app = Celery("carinho-supervisor", broker=broker)
            app.conf.broker_connection_timeout = 2
        try:
            replies = app.control.ping(timeout=1.0) or []
        except Exception:  # noqa: BLE001 - a broker not yet reachable is "not yet healthy"
            return False
        return any(name.startswith(node_prefix) for reply in replies for name in reply)

    return check


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM (a service manager) stop the hub. Installed explicitly:
    a background job of a non-interactive shell starts with SIGINT ignored, and Python
    then keeps ignoring it."""

    def handler(*_args: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def python_bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))
