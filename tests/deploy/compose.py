"""The compose stack of deploy/docker-compose.yml, driven as deploy/README.md says: the
local base images, the hub's and the sandbox's images, ``docker-compose up`` on host
networking with every port chosen free, health polled from Docker, ``down -v`` at the end.

Used by tests/deploy/test_compose_stack.py and the compose benchmarks (benchmarks/fanout_latency.py
--mode compose, benchmarks/compose_scaleout.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
IMAGE = "carinho-integracoes:smoke"
LOCAL_IMAGES = {"CARINHO_POSTGRES_IMAGE": "carinho-local/postgres:15", "CARINHO_REDIS_IMAGE": "carinho-local/redis:7"}
BASE_IMAGE = "carinho-local/python:3.11"
API_KEY = "sandbox-ops-key"  # deploy/sandbox.env
SANDBOX_PORTS = 11  # the simulators (+0..+8), control (+9), SMTP mailbox (+10)
#: the services that stay up (migrate is a one-shot)
LONG_RUNNING = ("postgres", "redis", "sandbox", "code-server", "relay", "webserver", "daemon",
                "worker-high", "worker-default", "worker-low")
WORKERS = ("worker-high", "worker-default", "worker-low")


def docker_available() -> str | None:
    """None if a Docker engine answers, else why not."""
    if not shutil.which("docker") or not shutil.which("docker-compose"):
        return "docker and docker-compose are not installed"
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"no Docker engine answers: {done.stderr.strip()[:200]}"


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(size: int, start: int = 20000) -> int:
    """The first of ``size`` consecutive free loopback ports at or above ``start``."""
    base = start
    while base + size < 60000:
        if all(_free(base + i) for i in range(size)):
            return base
        base += size
    raise RuntimeError("no block of free ports")


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def build_images(image: str = IMAGE) -> dict[str, float]:
    """The local bases (only if missing) and the hub's and sandbox's images; seconds each."""
    env = {**os.environ, "BASE_IMAGE": BASE_IMAGE, "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    return {"local_bases": timed([str(DEPLOY / "local-base" / "build.sh")]),
            "images": timed([str(DEPLOY / "build-image.sh"), "--sandbox", image], env=env)}


class ComposeStack:
    """One compose project. ``ports`` are this stack's; ``env_file`` is deploy/sandbox.env
    with the simulators moved to the stack's sandbox ports."""

    def __init__(self, project: str, workdir: Path, image: str = IMAGE, ports: dict[str, int] | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.project, self.workdir, self.image = project, workdir, image
        if ports is None:
            base = free_block(5 + SANDBOX_PORTS)
            ports = {"CARINHO_RELAY_PORT": base, "CARINHO_DAGSTER_PORT": base + 1,
                     "CARINHO_CODE_SERVER_PORT": base + 2, "CARINHO_PG_PORT": base + 3,
                     "CARINHO_REDIS_PORT": base + 4, "CARINHO_SANDBOX_PORT": base + 5}
        self.ports = ports
        self.relay = f"http://127.0.0.1:{ports['CARINHO_RELAY_PORT']}"
        self.graphql = f"http://127.0.0.1:{ports['CARINHO_DAGSTER_PORT']}/graphql"
        self.control = f"http://127.0.0.1:{ports['CARINHO_SANDBOX_PORT'] + 9}"
        self.env_file = workdir / f"{project}.env"
        self.env_file.write_text(self._env_text(extra_env or {}))
        self.values = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines()
                           if line and not line.startswith("#") and "=" in line)

    def _env_text(self, extra: dict[str, str]) -> str:
        sandbox_base = self.ports["CARINHO_SANDBOX_PORT"]

        def move(match: re.Match) -> str:  # 127.0.0.1:81NN -> the stack's sandbox port + NN
            return f"127.0.0.1:{sandbox_base + int(match.group(1))}"

        text = re.sub(r"127\.0\.0\.1:81(\d\d)", move, (DEPLOY / "sandbox.env").read_text())
        text = re.sub(r"^SMTP_PORT=81(\d\d)$", lambda m: f"SMTP_PORT={sandbox_base + int(m.group(1))}", text,
                      flags=re.M)
        text = text.replace("CARINHO_ENV_FILE=sandbox.env", f"CARINHO_ENV_FILE={self.env_file}")
        lines = [text.rstrip("\n")] + [f"{k}={v}" for k, v in {**{k: str(v) for k, v in self.ports.items()},
                                                                **extra}.items()]
        return "\n".join(lines) + "\n"

    # -- docker-compose ------------------------------------------------------------------

    def compose_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARINHO_", "DAGSTER_", "POSTGRES_"))}
        return {**env, **LOCAL_IMAGES, "CARINHO_IMAGE": self.image, "CARINHO_SANDBOX_IMAGE": f"{self.image}-sandbox"}

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE), "--env-file", str(self.env_file),
                "--profile", "sandbox", *args]
        done = subprocess.run(argv, cwd=DEPLOY, env=self.compose_env(), capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def up(self, *services: str) -> None:
        self.compose("up", "-d", *services, timeout=600)

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300, check=False)

    def containers(self) -> list[dict[str, Any]]:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
                             capture_output=True, text=True).stdout.split()
        if not ids:
            return []
        return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True).stdout)

    def container(self, service: str) -> dict[str, Any]:
        for c in self.containers():
            if c["Config"]["Labels"].get("com.docker.compose.service") == service:
                return c
        raise AssertionError(f"no container for {service}")

    def health(self) -> dict[str, str]:
        """service -> healthy | starting | unhealthy | exited(<code>) | <state>"""
        out = {}
        for c in self.containers():
            service = c["Config"]["Labels"]["com.docker.compose.service"]
            state = c["State"]
            if state["Status"] == "exited":
                out[service] = f"exited({state['ExitCode']})"
            else:
                out[service] = (state.get("Health") or {}).get("Status") or state["Status"]
        return out

    def wait_healthy(self, services: tuple[str, ...] = LONG_RUNNING, timeout: float = 180) -> float:
        started = time.monotonic()
        while True:
            health = self.health()
            if all(health.get(s) == "healthy" for s in services):
                return time.monotonic() - started
            bad = {s: h for s, h in health.items() if h.startswith("exited") and h != "exited(0)"}
            if bad or time.monotonic() - started > timeout:
                raise AssertionError(f"stack not healthy: {health}\n{self.logs()}")
            time.sleep(0.5)

    def logs(self, service: str | None = None, tail: int = 40) -> str:
        args = ["logs", "--no-color", "--tail", str(tail)] + ([service] if service else [])
        return self.compose(*args, check=False).stdout[-8000:]

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        run = lambda *a: subprocess.run(["docker", *a], capture_output=True, text=True).stdout.split()  # noqa: E731
        return {"containers": run("ps", "-aq", "--filter", label), "volumes": run("volume", "ls", "-q", "--filter", label),
                "networks": run("network", "ls", "-q", "--filter", label)}

    # -- the hub -------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.relay, timeout=15, headers={"X-API-Key": API_KEY})

    def token(self, system: str) -> str:
        return self.values[f"CARINHO_{system.upper()}_TOKEN"]

    def sandbox_state(self, system: str) -> dict[str, list[dict[str, Any]]]:
        return httpx.get(f"{self.control}/systems/{system}/state", timeout=15).json()

    def runs_in(self, statuses: list[str]) -> list[dict[str, Any]]:
        query = ("query($s: [RunStatus!]) { runsOrError(filter: {statuses: $s}, limit: 1000) "
                 "{ ... on Runs { results { runId status tags { key value } } } } }")
        resp = httpx.post(self.graphql, json={"query": query, "variables": {"s": statuses}}, timeout=30)
        return resp.json()["data"]["runsOrError"]["results"]

    def run_log(self, run_id: str, last: int = 30) -> str:
        """A run's status and its last event-log messages (for a failure's report)."""
        query = ("query($r: ID!) { runOrError(runId: $r) { ... on Run { status } } "
                 "logsForRun(runId: $r, limit: 10000) { ... on EventConnection { events { __typename "
                 "... on MessageEvent { timestamp message stepKey } } } } }")
        resp = httpx.post(self.graphql, json={"query": query, "variables": {"r": run_id}}, timeout=30).json()["data"]
        events = (resp.get("logsForRun") or {}).get("events") or []
        lines = [f"  {e.get('timestamp')} {e['__typename']} {e.get('stepKey') or ''} {(e.get('message') or '')[:200]}"
                 for e in events[-last:]]
        return f"run {run_id} {(resp.get('runOrError') or {}).get('status')}\n" + "\n".join(lines)
