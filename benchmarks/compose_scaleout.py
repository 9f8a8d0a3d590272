"""Scale-out of the single-host deployment (issue 14): a second set of run workers joins.

The compose stack of deploy/docker-compose.yml (the sandbox profile) takes bursts of the
seed mix. Between rounds a second set of the three worker containers is started under
its own compose project name, as another machine would start it: the same broker and
storage URLs (the same env file), nothing else shared (``up --no-deps``: no PostgreSQL,
Redis, relay or daemon of its own). Prints, per round, the events done per second, the
machine's CPU, and how many runs each worker set took (Celery's own task counts).

    .venv/bin/python benchmarks/compose_scaleout.py              # 3 rounds of 300 events
    .venv/bin/python benchmarks/compose_scaleout.py --events 200

Round 1: one worker set. Round 2: the second set is started as the burst begins and
joins under load. Round 3: both sets, warm. Needs a Docker engine (deploy/README.md).
Loopback only; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from fanout_latency import MIX, Stack, cpu_busy_seconds, pct  # noqa: E402

from tests.deploy.compose import WORKERS, ComposeStack  # noqa: E402

SECOND_SET_ID = "second-set"


def task_counts(broker: str) -> dict[str, int]:
    """Celery node name -> runs it has executed so far (its ``inspect stats`` totals)."""
    from celery import Celery

    app = Celery(broker=broker)
    try:
        stats = app.control.inspect(timeout=3).stats() or {}
    finally:
        app.close()
    return {node: sum((info.get("total") or {}).values()) for node, info in stats.items()}


def burst(stack: Stack, n: int, joins: ComposeStack | None = None) -> dict:
    """Post ``n`` events of the seed mix from 8 senders, wait until every one is done."""
    queues = [random.choices(list(MIX), weights=list(MIX.values()))[0] for _ in range(n)]
    ids: list[int] = []
    lock = threading.Lock()
    cpu0, t0 = cpu_busy_seconds(), time.monotonic()

    def send(chunk: list[str]) -> None:
        for queue in chunk:
            event_id = stack.post(queue)
            with lock:
                ids.append(event_id)

    senders = [threading.Thread(target=send, args=(queues[i::8],)) for i in range(8)]
    for t in senders:
        t.start()
    joined = None
    if joins is not None:  # the second set starts as the burst begins
        joins.compose("up", "-d", "--no-deps", *WORKERS, timeout=600)
        joined = time.monotonic() - t0
    for t in senders:
        t.join()
    deadline = time.monotonic() + 600
    while True:
        done = stack.outcome(ids)
        if len(done) == len(ids) and all(v[1] is not None for v in done.values()):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{sum(v[1] is None for v in done.values())} of {n} events not done after 600 s")
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    latencies = [v[1] for v in done.values()]
    return {"n": n, "elapsed": elapsed, "cpu": cpu_busy_seconds() - cpu0, "joined": joined,
            "p50": pct(latencies, 50), "p95": pct(latencies, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300, help="events per round")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    cores = os.cpu_count() or 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="carinho-scaleout-") as tmp:
        stack = Stack("compose", Path(tmp))
        second = None
        try:
            first = stack.compose
            broker = f"redis://127.0.0.1:{first.ports['CARINHO_REDIS_PORT']}/0"
            # another machine: its own project, the same env file (broker, storage, ports)
            second = ComposeStack(f"{first.project}-second", Path(tmp), ports=first.ports,
                                  extra_env={"CARINHO_WORKER_ID": SECOND_SET_ID})
            for name, joins in (("one worker set", None), ("second set joins under load", second),
                                ("two worker sets", None)):
                before = task_counts(broker)
                result = burst(stack, args.events, joins)
                if joins is not None:
                    second.wait_healthy(WORKERS)
                after = task_counts(broker)
                taken = {node: after.get(node, 0) - before.get(node, 0) for node in after}
                result["second_set_runs"] = sum(v for node, v in taken.items() if f".{SECOND_SET_ID}@" in node)
                result["runs"] = sum(taken.values())
                rows.append((name, result))
                print(f"{name}: {args.events} events in {result['elapsed']:.1f} s "
                      f"({args.events / result['elapsed']:.1f}/s), p95 {result['p95']:.1f} s; runs taken by the "
                      f"second set {result['second_set_runs']} of {result['runs']}"
                      + (f" (started {result['joined']:.1f} s into the burst)" if result["joined"] else ""))
        finally:
            if second is not None:
                second.down()
            stack.close()
    print(f"\n## scale-out: bursts of {args.events} events at the seed mix, {cores} cores")
    print(f"{'round':30} {'events/s':>9} {'p50 s':>7} {'p95 s':>7} {'cores busy':>11} {'runs by 2nd set':>16}")
    for name, r in rows:
        print(f"{name:30} {r['n'] / r['elapsed']:>9.1f} {r['p50']:>7.1f} {r['p95']:>7.1f} "
              f"{100 * r['cpu'] / (r['elapsed'] * cores):>10.0f}% {r['second_set_runs']:>7} of {r['runs']:<6}")


if __name__ == "__main__":
    main()
