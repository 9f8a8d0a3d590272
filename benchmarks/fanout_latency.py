"""Fan-out latency: relay → event store → Dagster run → simulators, per queue.

Drives the seed's expected mix (100/h integrations-high, 500/h integrations, 200/h
notifications) at 1× and 10×, plus a burst, through the real stack: the relay and the
Dagster daemon (and webserver) as processes on PostgreSQL storage, the sandbox over
HTTP. Prints per queue p50/p95/p99 of *received → last action done*, CPU seconds and
peak RSS per event, and the share of the 2 cores used.

    .venv/bin/python benchmarks/fanout_latency.py                  # sensor dispatch, default launcher
    .venv/bin/python benchmarks/fanout_latency.py --mode direct    # the relay submits each run itself
    .venv/bin/python benchmarks/fanout_latency.py --mode celery    # direct + warm Celery run workers
    .venv/bin/python benchmarks/fanout_latency.py --mode compose   # deploy/docker-compose.yml, the sandbox profile

Bounded: each phase sends for --duration seconds and waits at most --drain seconds.
Loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from carinho_pipelines.platform.instance import prepare_dagster_home  # noqa: E402
from carinho_pipelines.kernel.queues import QUEUES  # noqa: E402
from carinho_sandbox import Sandbox  # noqa: E402
from carinho_pipelines.store.migrate import upgrade  # noqa: E402
from carinho_pipelines.store.tables import event_actions, events, whatsapp_outbox  # noqa: E402

PG_ADMIN = os.environ.get("CARINHO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent
#: per hour at 1× (CONTRACTS §3)
MIX = {"integrations-high": 100, "integrations": 500, "notifications": 200}


def epoch(moment: datetime.datetime) -> float:
    """Seconds since the epoch of a timestamp from the event store (naive means UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)).timestamp()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_db(admin: sa.Engine, name: str) -> str:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


# -- machine measurements -------------------------------------------------------------


def cpu_busy_seconds() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / os.sysconf("SC_CLK_TCK")


def tree_pss_mb(roots: list[int]) -> float:
    """Proportional set size of the process trees: shared pages (a prefork worker's
    children share most of their parent's) counted once, unlike the sum of RSS."""
    total = 0
    for pid in tree_pids(roots):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


def tree_pids(roots: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(children.get(pid, []))
    return seen


def tree_rss_mb(roots: list[int]) -> float:
    """Summed RSS of the process trees (shared pages counted in every process)."""
    total = 0
    for pid in tree_pids(roots):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def process_cpu() -> dict[int, tuple[str, float]]:
    """pid → (command line, CPU seconds so far, its own and its reaped children's) of
    every process on the machine."""
    tck, out = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline") as f:
                cmd = f.read().replace("\0", " ").strip()
        except OSError:
            continue
        # utime + stime + the reaped children's (short-lived processes: PostgreSQL
        # backends of one-off connections, helper subprocesses)
        out[int(entry)] = (cmd, sum(int(x) for x in fields[11:15]) / tck)
    return out


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two ``process_cpu`` snapshots, summed per role
    (a process that started and ended in between counts for its parent's role)."""
    roles = [("celery_app", "worker"), ("dagster-webserver", "webserver"), ("dagster-daemon", "daemon"),
             ("grpc", "code servers"), ("carinho relay", "relay"),
             ("postgres:", "postgresql"), ("postgresql/", "postgresql"), ("redis", "redis"),
             ("valkey-server", "broker"), ("carinho run", "supervisor"), ("fanout_latency", "benchmark + sandbox")]
    totals: dict[str, float] = {}
    for pid, (cmd, seconds) in after.items():
        prior = before.get(pid)
        spent = seconds - (prior[1] if prior and prior[0] == cmd else 0.0)
        if spent <= 0:
            continue
        role = next((name for needle, name in roles if needle in cmd), "other")
        totals[role] = totals.get(role, 0.0) + spent
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


class RssSampler(threading.Thread):
    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots, self.peak, self.stop = roots, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(self.roots))
            time.sleep(0.5)


# -- the stack ------------------------------------------------------------------------


class Stack:
    def __init__(self, mode: str, workdir: Path, log: str | None = None, code_server: bool = False) -> None:
        self.mode = mode
        self.procs: list[subprocess.Popen] = []
        self.compose = None
        if mode == "embedded":
            self._start_embedded(workdir, log)
            return
        if mode == "compose":
            self._start_compose(workdir)
            return
        self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        suffix = uuid.uuid4().hex[:6]
        self.store_url = make_db(self.admin, f"bench_events_{suffix}")
        self.dagster_url = make_db(self.admin, f"bench_dagster_{suffix}")
        upgrade(self.store_url)
        self.engine = sa.create_engine(self.store_url)
        self.sb = Sandbox(base_port=0).start()
        self.sb.seed_default()
        home = workdir / "dagster_home"
        self.relay_port, self.ui_port = free_port(), free_port()
        self.env = {
            **os.environ,
            **self.sb.env(),
            "CARINHO_DATABASE_URL": self.store_url,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": self.dagster_url,
            "CARINHO_DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{self.ui_port}/graphql",
            "CARINHO_FEEDBACK_SECRET": "bench",
            "CARINHO_DIRECT_SUBMIT": "true" if mode in ("direct", "celery") else "false",
        }
        if mode == "celery":
            self.env["CARINHO_CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/11"
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("DAGSTER_", "CARINHO_CELERY"))})
        prepare_dagster_home(home, postgres=True)
        from dagster import DagsterInstance

        from carinho_pipelines.destinations.limits import apply_pool_limits

        with DagsterInstance.from_config(str(home)) as instance:  # as `carinho instance limits` does
            apply_pool_limits(instance)
        self.home = home
        self.log = open(log or workdir / "stack.log", "ab")
        self.spawn([str(BIN / "carinho"), "relay", "--port", str(self.relay_port)])
        workspace = REPO / "workspace.yaml"
        if code_server:
            # a standalone code server (deploy/workspace.code-server.yaml), as deployed
            self.env.update(CARINHO_CODE_SERVER_HOST="127.0.0.1", CARINHO_CODE_SERVER_PORT=str(free_port()))
            self.spawn([str(BIN / "dagster"), "api", "grpc", "-m", "carinho_pipelines.definitions",
                        "--location-name", "carinho_pipelines", "-h", "127.0.0.1", "-p", self.env["CARINHO_CODE_SERVER_PORT"]])
            workspace = REPO / "deploy" / "workspace.code-server.yaml"
            self.wait_port(int(self.env["CARINHO_CODE_SERVER_PORT"]))
        self.spawn([str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(self.ui_port)])
        self.spawn([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        if mode == "celery":
            from carinho_pipelines.platform.instance import celery_worker_commands

            for command in celery_worker_commands():
                self.spawn(command)
        self.sb.zapi.set_webhook(f"http://127.0.0.1:{self.relay_port}/webhooks/whatsapp?token={self.env['ZAPI_WEBHOOK_TOKEN']}")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.relay_port}", timeout=30)
        self.wait(f"http://127.0.0.1:{self.relay_port}/health")
        self.wait(f"http://127.0.0.1:{self.ui_port}/server_info")
        time.sleep(15)  # the daemon's code server and first sensor ticks

    def _start_embedded(self, workdir: Path, log: str | None) -> None:
        """Exactly what ``make run`` runs: ``carinho run`` (SQLite event store and Dagster
        storage, the embedded Valkey broker, the warm workers), pointed at this process's
        sandbox (``--no-sandbox`` plus the sandbox's environment) so the simulators' CPU
        is not counted as the hub's."""
        self.sb = Sandbox(base_port=0).start()
        self.sb.seed_default()
        data = workdir / "data"
        data.mkdir()
        self.relay_port, self.ui_port, broker_port = free_port(), free_port(), free_port()
        # this process reads the instance (stages) and its config names the broker
        os.environ["CARINHO_CELERY_BROKER_URL"] = f"redis://127.0.0.1:{broker_port}/0"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CARINHO_", "DAGSTER_"))}
        self.env = {**clean, **self.sb.env(), "CARINHO_DATA_DIR": str(data), "CARINHO_FEEDBACK_SECRET": "bench"}
        self.home = data / "dagster_home"
        self.store_url = f"sqlite:///{data / 'events.db'}"
        self.log = open(log or workdir / "stack.log", "ab")
        out = workdir / "carinho-run.out"
        self.procs.append(subprocess.Popen(
            [str(BIN / "carinho"), "run", "--no-sandbox", "--relay-port", str(self.relay_port),
             "--dagster-port", str(self.ui_port), "--code-server-port", str(free_port()),
             "--broker-port", str(broker_port)],
            cwd=workdir, env=self.env, stdout=open(out, "wb"), stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything." not in out.read_text(errors="replace"):
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"carinho run did not come up:\n{out.read_text(errors='replace')}")
            time.sleep(0.5)
        self.engine = sa.create_engine(self.store_url)
        self.sb.zapi.set_webhook(f"http://127.0.0.1:{self.relay_port}/webhooks/whatsapp?token={self.env['ZAPI_WEBHOOK_TOKEN']}")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.relay_port}", timeout=30)

    def _start_compose(self, workdir: Path) -> None:
        """The single-host deployment as deploy/README.md runs it: the images built (the
        local bases when missing), ``docker-compose up`` with the ``sandbox`` profile on
        free ports, every service healthy. The benchmark reads the stack's own event store
        and Dagster storage; the simulators run in their container."""
        from tests.deploy.compose import ComposeStack, build_images, docker_available

        why = docker_available()
        if why:
            raise SystemExit(f"--mode compose needs a Docker engine (deploy/README.md): {why}")
        print("building the images:", {k: f"{v:.0f} s" for k, v in build_images().items()})
        self.compose = ComposeStack(f"carinho-bench-{os.getpid()}", workdir)
        started = time.monotonic()
        self.compose.up()
        print(f"compose stack healthy after {time.monotonic() - started + self.compose.wait_healthy():.0f} s")
        values, ports = self.compose.values, self.compose.ports
        pg = f"postgresql://carinho:{values['POSTGRES_PASSWORD']}@127.0.0.1:{ports['CARINHO_PG_PORT']}"
        self.store_url, self.dagster_url = f"{pg}/carinho_events", f"{pg}/carinho_dagster"
        self.engine = sa.create_engine(self.store_url)
        self.env = dict(values)
        # this process reads the stack's instance (stages): its storage and broker
        os.environ.update(DAGSTER_PG_URL=self.dagster_url,
                          CARINHO_CELERY_BROKER_URL=f"redis://127.0.0.1:{ports['CARINHO_REDIS_PORT']}/0")
        self.home = prepare_dagster_home(workdir / "dagster_home", postgres=True)
        self.relay_port, self.ui_port = ports["CARINHO_RELAY_PORT"], ports["CARINHO_DAGSTER_PORT"]
        self.http = httpx.Client(base_url=self.compose.relay, timeout=30)

    def token(self, system: str) -> str:
        return self.compose.token(system) if self.compose else self.sb.token(system)

    def spawn(self, command: list[str]) -> None:
        self.procs.append(subprocess.Popen(command, cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    @staticmethod
    def wait_port(port: int, timeout: float = 120) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"nothing listens on {port}")

    @staticmethod
    def wait(url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{url} did not come up")

    def pids(self) -> list[int]:
        """The stack's root processes (a container's main process and its children are
        host processes too)."""
        if self.compose:
            return [c["State"]["Pid"] for c in self.compose.containers()
                    if c["State"]["Pid"] and c["Config"]["Labels"].get("com.docker.compose.service") != "sandbox"]
        return [p.pid for p in self.procs]

    def close(self) -> None:
        if self.compose:
            self.engine.dispose()
            self.compose.down()
            return
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGINT if self.mode == "embedded" else signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.sb.stop()
        self.engine.dispose()
        if self.mode == "embedded":
            return
        with self.admin.connect() as conn:
            for url in (self.store_url, self.dagster_url):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)'))

    def stages(self, ids: list[int]) -> dict[str, dict[str, list[float]]]:
        """Where the time went, per event and queue: received → run created (submission),
        created → launched (Dagster's run queue), launched → started (broker, a free worker
        process, loading the run), started → last action done."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.run_id, events.c.queue, events.c.received_at, sa.func.max(event_actions.c.updated_at))
                .select_from(events.join(event_actions, event_actions.c.event_id == events.c.id))
                .where(events.c.id.in_(ids), events.c.run_id.is_not(None))
                .group_by(events.c.id, events.c.run_id, events.c.queue, events.c.received_at)
            ).all()
        from dagster import DagsterEventType, DagsterInstance, RunsFilter

        runs = {}
        with DagsterInstance.from_config(str(self.home)) as instance:
            for record in instance.get_run_records(RunsFilter(run_ids=[r[0] for r in rows])):
                starting = instance.get_records_for_run(record.dagster_run.run_id,
                                                        of_type=DagsterEventType.PIPELINE_STARTING, limit=1).records
                runs[record.dagster_run.run_id] = (record.create_timestamp.timestamp(),
                                                   starting[0].event_log_entry.timestamp if starting else None,
                                                   record.start_time)
        out: dict[str, dict[str, list[float]]] = {}
        for run_id, queue, received, last in rows:
            created, launched, started = runs.get(run_id, (None, None, None))
            if None in (created, launched, started, last):
                continue
            stage = out.setdefault(queue, {"submit": [], "run queue": [], "to worker": [], "execute": []})
            stage["submit"].append(created - epoch(received))
            stage["run queue"].append(launched - created)
            stage["to worker"].append(started - launched)
            stage["execute"].append(epoch(last) - started)
        return out

    # -- traffic ------------------------------------------------------------------------

    def post(self, queue: str) -> int:
        n = uuid.uuid4().int % 10**8
        phone = f"55119{n:08d}"
        auth = lambda system: {"Authorization": f"Bearer {self.token(system)}"}  # noqa: E731
        if queue == "integrations-high":
            resp = self.http.post("/webhooks/site/lead", headers=auth("site"),
                                  json={"name": "Cliente Bench", "phone": phone, "utm_source": "google",
                                        "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
        elif queue == "integrations":
            if random.random() < 0.5:
                resp = self.http.post("/webhooks/financeiro/payment", headers=auth("financeiro"),
                                      json={"id": n, "status": "paid", "client_id": 7, "amount": 180.0})
            else:
                resp = self.http.post("/webhooks/operacao/service-completed", headers=auth("operacao"),
                                      json={"id": n, "client_id": 7, "client_name": "Carla", "client_phone": phone,
                                            "caregiver_id": 3, "caregiver_name": "Rosa"})
        else:
            resp = self.http.post("/webhooks/financeiro/payout", headers=auth("financeiro"),
                                  json={"id": n, "caregiver_id": 3, "caregiver_name": "Rosa", "caregiver_phone": phone,
                                        "amount": 950.0, "period_start": "2026-11-01", "period_end": "2026-11-15"})
        resp.raise_for_status()
        return resp.json()["event_id"]

    def outcome(self, ids: list[int], excluding: str | None = None) -> dict[int, tuple[str, float | None]]:
        """event id → (queue, seconds from received to its last action, None if not done);
        with ``excluding`` (a destination), to its last action to any other destination."""
        from carinho_pipelines.kernel.catalogue import CATALOGUE

        skipped = sorted({a.name for spec in CATALOGUE.values() for a in spec.actions if a.destination == excluding})
        joined = sa.and_(event_actions.c.event_id == events.c.id, event_actions.c.action.not_in(skipped))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.id, events.c.queue, events.c.event_type, events.c.received_at,
                          sa.func.max(event_actions.c.updated_at), sa.func.count(event_actions.c.id),
                          sa.func.sum(sa.case((event_actions.c.status == "failed", 1), else_=0)))
                .select_from(events.outerjoin(event_actions, joined))
                .where(events.c.id.in_(ids))
                .group_by(events.c.id, events.c.queue, events.c.event_type, events.c.received_at)
            ).all()
            # a WhatsApp message the run held (paced beyond its queue's wait, or Z-API
            # down) is done when the outbox has sent it, not when the run recorded "held"
            messages = {event_id: (unsent, sent) for event_id, unsent, sent in conn.execute(
                sa.select(whatsapp_outbox.c.event_id,
                          sa.func.sum(sa.case((whatsapp_outbox.c.status != "sent", 1), else_=0)),
                          sa.func.max(whatsapp_outbox.c.sent_at))
                .where(whatsapp_outbox.c.event_id.in_(ids)).group_by(whatsapp_outbox.c.event_id))}
        out = {}
        for event_id, queue, event_type, received, last, n_actions, failed in rows:
            unsent, sent = messages.get(event_id, (0, None))
            expected = sum(1 for a in CATALOGUE[event_type].actions if a.name not in skipped)
            complete = n_actions == expected and not failed and not unsent
            if sent is not None and last is not None:
                last = max(last, sent)
            out[event_id] = (queue, (last - received).total_seconds() if complete and last else None)
        return out


def phase(stack: Stack, name: str, schedule: list[tuple[float, str]], drain: float) -> dict:
    """Send ``schedule`` ([(offset seconds, queue)]), wait for completion, measure."""
    cpu0, procs0, t0 = cpu_busy_seconds(), process_cpu(), time.monotonic()
    sampler = RssSampler(stack.pids())
    sampler.start()
    ids: list[int] = []
    lock = threading.Lock()

    def send(queue: str) -> None:
        event_id = stack.post(queue)
        with lock:
            ids.append(event_id)

    threads = []
    for offset, queue in schedule:
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=send, args=(queue,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        done = stack.outcome(ids)
        if all(v[1] is not None for v in done.values()) and len(done) == len(ids):
            break
        time.sleep(1)
    elapsed = time.monotonic() - t0
    cpu = cpu_busy_seconds() - cpu0
    roles = cpu_by_role(procs0, process_cpu())
    stages = stack.stages(ids)
    sampler.stop.set()
    results = stack.outcome(ids)
    by_queue: dict[str, list[float]] = {}
    missing = 0
    for queue, seconds in results.values():
        if seconds is None:
            missing += 1
        else:
            by_queue.setdefault(queue, []).append(seconds)
    return {"name": name, "ids": ids, "sent": len(ids), "missing": missing, "elapsed": elapsed, "cpu": cpu,
            "peak_rss": sampler.peak, "by_queue": by_queue, "roles": roles, "stages": stages}


def flood_phase(stack: Stack, args: argparse.Namespace) -> dict:
    """The 10x mix while Marketing answers in 2 s and gets a flood of ``--flood`` events
    (client.registered, whose fan-out calls Marketing): the other events' latency, and
    the most Z-API messages seen in any 1 s window."""
    stack.sb.latency("marketing", 2.0)
    started = time.time()
    flooded: list[int] = []

    def flood() -> None:
        auth = {"Authorization": f"Bearer {stack.sb.token('crm')}"}
        for _ in range(args.flood):
            n = uuid.uuid4().int % 10**8
            resp = stack.http.post("/webhooks/crm/client-registered", headers=auth,
                                   json={"id": n, "name": "Cliente Flood", "phone": f"55118{n:08d}"})
            resp.raise_for_status()
            flooded.append(resp.json()["event_id"])

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        result = phase(stack, f"10x seed mix + {args.flood} events to Marketing answering in 2 s",
                       poisson_schedule(MIX, args.duration, 10), args.drain)
    finally:
        sender.join()
        stack.sb.latency("marketing", 0.0)
    times = sorted(m["received_ts"] for m in stack.sb.zapi.sent() if m.get("received_ts", 0) >= started)
    result["zapi_max_per_second"] = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    done = stack.outcome(flooded)
    result["flood_done"] = sum(1 for _q, seconds in done.values() if seconds is not None)
    return result


def report_others(stack: Stack, result: dict) -> None:
    """What a flood to Marketing must not delay: each event's actions to every other
    destination (printed for the 10x phase too, the run without the flood)."""
    by_queue: dict[str, list[float]] = {}
    for queue, seconds in stack.outcome(result["ids"], excluding="marketing").values():
        if seconds is not None:
            by_queue.setdefault(queue, []).append(seconds)
    result["others_by_queue"] = by_queue
    print("received → last action to a destination other than Marketing:")
    for queue in MIX:
        values = by_queue.get(queue, [])
        print(f"  {queue:20} n {len(values):4}  p50 {pct(values, 50):6.2f}  p95 {pct(values, 95):6.2f}"
              f"  SLA {QUEUES[queue].sla_seconds}")


def poisson_schedule(rate_per_hour: dict[str, float], duration: float, multiplier: float) -> list[tuple[float, str]]:
    out = []
    for queue, per_hour in rate_per_hour.items():
        rate = per_hour * multiplier / 3600
        t = random.expovariate(rate)
        while t < duration:
            out.append((t, queue))
            t += random.expovariate(rate)
    return sorted(out)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def idle_phase(stack: Stack, duration: float) -> dict:
    """The stack with no traffic: what it costs to be up (sensors, run queue, monitoring)."""
    cpu0, procs0, t0 = cpu_busy_seconds(), process_cpu(), time.monotonic()
    time.sleep(duration)
    elapsed, cpu = time.monotonic() - t0, cpu_busy_seconds() - cpu0
    roles = cpu_by_role(procs0, process_cpu())
    cores = os.cpu_count() or 2
    rss, pss = tree_rss_mb(stack.pids()), tree_pss_mb(stack.pids())
    stack_cpu = sum(seconds for role, seconds in roles.items() if role not in ("other", "benchmark + sandbox"))
    print(f"\n## idle for {elapsed:.0f} s: {cpu:.1f} CPU-s, {100 * cpu / (elapsed * cores):.1f}% of {cores} cores "
          f"(the stack alone: {100 * stack_cpu / elapsed:.1f}% of one core); "
          f"RSS of the stack {rss:.0f} MB (PSS {pss:.0f} MB)")
    print("CPU-s per minute by role: " + ", ".join(f"{role} {60 * seconds / elapsed:.2f}" for role, seconds in roles.items()))
    return {"cpu": cpu, "elapsed": elapsed, "rss": rss, "pss": pss, "stack_cpu": stack_cpu}


def report(result: dict) -> None:
    n = max(1, result["sent"] - result["missing"])
    print(f"\n## {result['name']}: {result['sent']} events in {result['elapsed']:.0f} s"
          f" ({result['missing']} not done within the drain time)")
    print(f"{'queue':20} {'n':>4} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'max s':>7} {'SLA s':>6}  p95 within SLA")
    for queue in MIX:
        values = result["by_queue"].get(queue, [])
        sla = QUEUES[queue].sla_seconds
        ok = "yes" if values and pct(values, 95) <= sla else "NO"
        print(f"{queue:20} {len(values):>4} {pct(values, 50):>7.2f} {pct(values, 95):>7.2f} {pct(values, 99):>7.2f}"
              f" {max(values) if values else float('nan'):>7.2f} {sla:>6}  {ok}")
    cores = os.cpu_count() or 2
    print(f"CPU: {result['cpu']:.1f} CPU-s in all, {result['cpu'] / n:.2f} CPU-s per event, "
          f"{100 * result['cpu'] / (result['elapsed'] * cores):.0f}% of {cores} cores; peak RSS of the stack "
          f"{result['peak_rss']:.0f} MB ({result['peak_rss'] / n:.1f} MB per event done)")
    for queue in MIX:
        stages = result["stages"].get(queue, {})
        print(f"  {queue} stages, p50 / p95 s: " + ", ".join(f"{name} {pct(v, 50):.2f} / {pct(v, 95):.2f}"
                                                           for name, v in stages.items()))
    print("CPU-s per event by role: " + ", ".join(f"{role} {seconds / n:.2f}" for role, seconds in result["roles"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="sensor",
                        help="sensor, direct, celery, embedded or compose; several, comma-separated, run one after the other"
                             " and end with a table comparing them")
    parser.add_argument("--duration", type=float, default=120, help="seconds of traffic per phase")
    parser.add_argument("--drain", type=float, default=240, help="max seconds to wait for completion")
    parser.add_argument("--burst", type=int, default=200, help="events sent at once in the burst phase (0 = skip)")
    parser.add_argument("--phases", default="1x,10x,burst",
                        help="1x, 10x, burst, idle, flood (10x while Marketing is slow and flooded)")
    parser.add_argument("--flood", type=int, default=500, help="events sent to Marketing in the flood phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", default=None, help="keep the stack's log in this file")
    parser.add_argument("--code-server", action=argparse.BooleanOptionalAction, default=False,
                        help="webserver and daemon use one standalone code server (deploy/workspace.code-server.yaml)"
                             " instead of starting their own from workspace.yaml")
    args = parser.parse_args()
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    unknown = set(modes) - {"sensor", "direct", "celery", "embedded", "compose"}
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}")
    if "compose" in modes and "flood" in args.phases:
        parser.error("the flood phase drives the in-process sandbox (Marketing's latency): not with --mode compose")
    summary: list[tuple[str, str, dict]] = []
    for mode in modes:
        random.seed(args.seed)
        summary += run_mode(mode, args)
    if len(modes) > 1:
        compare(summary)


def run_mode(mode: str, args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    rows: list[tuple[str, str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="carinho-bench-") as tmp:
        stack = Stack(mode, Path(tmp), log=args.log, code_server=args.code_server)
        try:
            idle = tree_rss_mb(stack.pids())
            what = "carinho run (relay, code server, webserver, daemon, workers, Valkey)" if mode == "embedded" else \
                "the compose stack's containers (all but the sandbox)" if mode == "compose" else (
                "relay + webserver + daemon" + (" + workers" if mode == "celery" else "") + " (and their code servers)")
            print(f"\n# fanout_latency --mode {mode}{' --code-server' if args.code_server else ''}: idle memory of "
                  f"{what}: {idle:.0f} MB RSS summed, {tree_pss_mb(stack.pids()):.0f} MB PSS")
            for name in args.phases.split(","):
                if name == "1x":
                    result = phase(stack, "1x seed mix", poisson_schedule(MIX, args.duration, 1), args.drain)
                elif name == "10x":
                    result = phase(stack, "10x seed mix", poisson_schedule(MIX, args.duration, 10), args.drain)
                    if "flood" in args.phases:
                        report(result)
                        report_others(stack, result)
                        rows.append((mode, name, result))
                        continue
                elif name == "flood":
                    result = flood_phase(stack, args)
                    report(result)
                    from carinho_pipelines.destinations.limits import LIMITS

                    report_others(stack, result)
                    print(f"Z-API: at most {result['zapi_max_per_second']} message(s) in any 1 s window "
                          f"(limit {LIMITS['whatsapp'].per_second:g}/s); flood events done: "
                          f"{result['flood_done']} of {args.flood}")
                    rows.append((mode, name, result))
                    continue
                elif name == "idle":
                    result = idle_phase(stack, args.duration)
                    rows.append((mode, name, result))
                    continue
                elif name == "burst" and args.burst:
                    queues = [random.choices(list(MIX), weights=list(MIX.values()))[0] for _ in range(args.burst)]
                    result = phase(stack, f"burst of {args.burst}", [(0.0, q) for q in queues], args.drain)
                else:
                    continue
                report(result)
                rows.append((mode, name, result))
        finally:
            stack.close()
    return rows


def compare(rows: list[tuple[str, str, dict]]) -> None:
    """One table: each mode's phases side by side."""
    cores = os.cpu_count() or 2
    print("\n## comparison (p95 in seconds; SLA 5 / 30 / 60)")
    print(f"{'mode':9} {'phase':6} {'high p95':>9} {'integr. p95':>12} {'notif. p95':>11} {'not done':>9} "
          f"{'CPU-s/event':>12} {'cores':>6} {'RSS MB':>7} {'PSS MB':>7}")
    for mode, name, r in rows:
        if name == "idle":
            print(f"{mode:9} {name:6} {'':>9} {'':>12} {'':>11} {'':>9} {'':>12} "
                  f"{100 * r['cpu'] / (r['elapsed'] * cores):>5.1f}% {r['rss']:>7.0f} {r['pss']:>7.0f}")
            continue
        p95 = [pct(r["by_queue"].get(q, []), 95) for q in MIX]
        n = max(1, r["sent"] - r["missing"])
        print(f"{mode:9} {name:6} {p95[0]:>9.2f} {p95[1]:>12.2f} {p95[2]:>11.2f} {r['missing']:>4}/{r['sent']:<4} "
              f"{r['cpu'] / n:>12.2f} {100 * r['cpu'] / (r['elapsed'] * cores):>5.0f}% {r['peak_rss']:>7.0f} {'':>7}")


if __name__ == "__main__":
    main()
