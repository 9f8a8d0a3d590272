"""Soak: the 10x seed mix for an hour (or ``--duration``), watching for drift.

    .venv/bin/python benchmarks/soak.py                                  # 60 min, a report every 5 min
    .venv/bin/python benchmarks/soak.py --duration 900 --every 150      # a quick check
    .venv/bin/python benchmarks/soak.py --mode embedded                 # what `make run` runs

Starts the same stack as ``fanout_latency.py`` (``--mode celery`` with a standalone code
server by default: PostgreSQL, Redis, relay, webserver, daemon, the three worker groups)
and sends Poisson traffic at 10x the seed's mix without pause. Every ``--every`` seconds
it prints:

* each process's RSS (worker pool processes are recycled after 500 runs, so a new pid
  in a role is a recycled child, not a leak);
* per queue, the p95 of received → last action of the events sent in that interval;
* the event store's and Dagster's storage size, and their growth since the start per
  1,000 events stored;
* the retention job's effect: the job's own functions (``purge_payloads``,
  ``purge_runs``) run with their clock moved forward so that everything older than
  ``--retention-window`` minutes counts as past the 30- and 90-day limits, and what
  they removed; so the sizes show storage under retention, as in production. Where the
  PostgreSQL server runs with autovacuum off, the soak then runs ``VACUUM`` itself, as
  autovacuum would, so that freed rows are reused.

At the end it fails loudly (exit 1) on a leak: a process alive at 25 % of the run (the
15th minute of an hour) whose RSS grew more than 10 % by the end.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_latency import MIX, Stack, pct, tree_pids  # noqa: E402

from carinho_pipelines.kernel.queues import QUEUES  # noqa: E402
from carinho_pipelines.store.tables import events  # noqa: E402

ROLES = [("celery_app", "worker"), ("dagster-webserver", "webserver"), ("dagster-daemon", "daemon"),
         ("api grpc", "code server"), ("grpc", "code server"), ("carinho relay", "relay"), ("relay.app", "relay"),
         ("valkey-server", "broker"), ("carinho run", "supervisor")]
LEAK_GROWTH = 0.10


def processes(roots: list[int]) -> dict[int, tuple[str, float]]:
    """pid → (role, RSS MB) of every process of the stack."""
    out = {}
    for pid in tree_pids(roots):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                cmd = f.read().replace("\0", " ")
            with open(f"/proc/{pid}/status") as f:
                rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0) / 1024
        except OSError:
            continue
        role = next((name for needle, name in ROLES if needle in cmd), None)
        if role is not None and rss > 0:
            out[pid] = (role, rss)
    return out


def sizes_mb(stack: Stack) -> tuple[float, float]:
    """(event store, Dagster storage) in MB."""
    if stack.mode == "embedded":
        data = Path(stack.store_url.removeprefix("sqlite:///")).parent
        store = sum(p.stat().st_size for p in data.glob("events.db*"))
        dagster = sum(p.stat().st_size for p in stack.home.rglob("*") if p.is_file())
        return store / 2**20, dagster / 2**20
    with stack.admin.connect() as conn:
        size = lambda url: conn.execute(sa.text("SELECT pg_database_size(:n)"),  # noqa: E731
                                        {"n": url.rsplit("/", 1)[1]}).scalar_one()
        return size(stack.store_url) / 2**20, size(stack.dagster_url) / 2**20


def retention(stack: Stack, window_minutes: float) -> dict[str, int]:
    """The retention job's purges, with everything older than the window past its limits."""
    from dagster import DagsterInstance

    from carinho_pipelines.monitoring.retention import purge_payloads, purge_runs, retention_days, run_retention_days
    from carinho_pipelines.store import EventStore, utcnow

    window = datetime.timedelta(minutes=window_minutes)
    store = EventStore(stack.store_url)
    try:
        payloads = purge_payloads(store, now=utcnow() + datetime.timedelta(days=retention_days()) - window)
    finally:
        store.engine.dispose()
    with DagsterInstance.from_config(str(stack.home)) as instance:
        runs = purge_runs(instance, now=utcnow() + datetime.timedelta(days=run_retention_days()) - window)
    out = {k: v for k, v in {**payloads, **runs}.items() if isinstance(v, int) and k != "cutoff_days"}
    if stack.mode != "embedded" and not autovacuum_on(stack):
        # what autovacuum would do with the rows the purges freed (it is off on some
        # machines: PostgreSQL then never reuses their space and the sizes only grow)
        for url in (stack.store_url, stack.dagster_url):
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(sa.text("VACUUM"))
            engine.dispose()
        out["vacuumed (autovacuum is off)"] = 1
    return out


def autovacuum_on(stack: Stack) -> bool:
    with stack.admin.connect() as conn:
        return conn.execute(sa.text("SHOW autovacuum")).scalar_one() == "on"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="celery", help="celery (PostgreSQL + Redis) or embedded (carinho run)")
    parser.add_argument("--duration", type=float, default=3600, help="seconds of traffic")
    parser.add_argument("--every", type=float, default=300, help="seconds between reports")
    parser.add_argument("--multiplier", type=float, default=10, help="times the seed's expected mix")
    parser.add_argument("--retention-window", type=float, default=10,
                        help="minutes after which the retention job treats data as past its limits")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)

    with tempfile.TemporaryDirectory(prefix="carinho-soak-") as tmp:
        stack = Stack(args.mode, Path(tmp), code_server=True)
        try:
            sys.exit(soak(stack, args))
        finally:
            stack.close()


def soak(stack: Stack, args: argparse.Namespace) -> int:
    sent: list[tuple[float, int]] = []  # (monotonic send time, event id)
    lock, stop = threading.Lock(), threading.Event()
    errors: list[str] = []

    def sender() -> None:
        rates = {queue: per_hour * args.multiplier / 3600 for queue, per_hour in MIX.items()}
        total = sum(rates.values())
        while not stop.is_set():
            time.sleep(random.expovariate(total))  # the Poisson process itself
            queue = random.choices(list(rates), weights=list(rates.values()))[0]
            threading.Thread(target=send, args=(queue,), daemon=True).start()

    def send(queue: str) -> None:
        try:
            event_id = stack.post(queue)
        except Exception as exc:  # noqa: BLE001 - counted and printed, the soak goes on
            errors.append(f"{queue}: {exc.__class__.__name__}")
            return
        with lock:
            sent.append((time.monotonic(), event_id))

    print(f"# soak --mode {args.mode}: {args.multiplier:g}x the seed mix for {args.duration:.0f} s, "
          f"a report every {args.every:.0f} s")
    args.baseline = sizes_mb(stack)
    start = time.monotonic()
    threading.Thread(target=sender, daemon=True).start()
    marks: dict[float, dict[int, tuple[str, float]]] = {}
    leak_from = args.duration * 0.25
    report_at = args.every
    while report_at <= args.duration + 1e-6:
        time.sleep(max(0.0, start + report_at - time.monotonic()))  # the report's own schedule
        if report_at >= args.duration:
            stop.set()
        marks[report_at] = report(stack, args, start, report_at, sent, lock, errors)
        report_at += args.every
    first = min((t for t in marks if t >= leak_from), default=None)
    last = max(marks)
    if first is None or first == last:
        print("\nleak check: the run is too short for two reports after 25 % of it")
        return 0
    leaks = []
    for pid, (role, rss) in marks[first].items():
        after = marks[last].get(pid)
        if after is not None and after[1] > rss * (1 + LEAK_GROWTH):
            leaks.append(f"{role} pid {pid}: {rss:.0f} → {after[1]:.0f} MB (+{100 * (after[1] / rss - 1):.0f} %)")
    print(f"\nleak check (RSS at {first / 60:.0f} min vs {last / 60:.0f} min, threshold +{LEAK_GROWTH:.0%}): "
          + ("none" if not leaks else ""))
    for line in leaks:
        print(f"  LEAK {line}")
    return 1 if leaks else 0


def report(stack: Stack, args, start: float, at: float, sent, lock, errors) -> dict[int, tuple[str, float]]:
    with lock:
        window = [eid for t, eid in sent if start + at - args.every <= t < start + at]
        total_sent = len(sent)
    done = stack.outcome(window)
    by_queue: dict[str, list[float]] = {}
    for queue, seconds in done.values():
        if seconds is not None:
            by_queue.setdefault(queue, []).append(seconds)
    procs = processes(stack.pids())
    purged = retention(stack, args.retention_window)
    store_mb, dagster_mb = sizes_mb(stack)
    with stack.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    per_k = max(1, stored) / 1000
    print(f"\n## minute {at / 60:.1f}: {len(window)} sent in the interval, {total_sent} in all, "
          f"{len(window) - sum(len(v) for v in by_queue.values())} of the interval's not done yet, "
          f"{len(errors)} refused sends in all")
    print("  p95 per queue: " + ", ".join(
        f"{q} {pct(by_queue.get(q, []), 95):.2f} s (SLA {QUEUES[q].sla_seconds})" for q in MIX))
    by_role: dict[str, list[str]] = {}
    for pid, (role, rss) in sorted(procs.items()):
        by_role.setdefault(role, []).append(f"{pid}:{rss:.0f}")
    print(f"  RSS MB (pid:MB), {sum(r for _, r in procs.values()):.0f} summed: "
          + "; ".join(f"{role} {' '.join(items)}" for role, items in sorted(by_role.items())))
    base_store, base_dagster = args.baseline
    print(f"  storage: event store {store_mb:.1f} MB (+{(store_mb - base_store) / per_k:.2f} MB per 1,000 events "
          f"since the start), Dagster {dagster_mb:.1f} MB (+{(dagster_mb - base_dagster) / per_k:.2f} MB per 1,000 "
          f"events), {stored} events stored")
    print("  retention (window {:g} min): {}".format(
        args.retention_window, ", ".join(f"{k} {v}" for k, v in purged.items()) or "nothing to report"))
    sys.stdout.flush()
    return procs


if __name__ == "__main__":
    main()
