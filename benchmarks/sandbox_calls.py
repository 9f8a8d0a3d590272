"""The sandbox on its own: time and CPU per call, so a sync benchmark measures the hub.

    .venv/bin/python benchmarks/sandbox_calls.py                  # 10k services, 2,000 calls of each kind
    .venv/bin/python benchmarks/sandbox_calls.py --services 1000 --calls 500 --clients 8

The sandbox runs in another process, seeded with N completed services of one day (the
``operacao_financeiro`` feed). A pool of ``--clients`` threads with one keep-alive
``httpx.Client`` each sends, per kind of call: ``POST /api/invoices`` (Financeiro),
``PUT /api/v1/services/{id}/billed`` (Operação), and a read of the whole completed-services
feed page by page. It prints, per kind, the client-side latency (p50/p95), the
throughput, and the sandbox process's CPU per call (its own ``getrusage``), which is
what the goal "< 2 ms per call" is about: CPU is what a loaded shared machine cannot hide.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from sync_throughput import SAO_PAULO, services  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(conn, n: int, day: str) -> None:
    from carinho_sandbox import Sandbox

    sb = Sandbox(base_port=0).start()
    sb.seed({"operacao": {"services": services(n, dt.date.fromisoformat(day))}})
    conn.send(sb.env())
    while conn.recv() != "stop":
        conn.send(cpu_seconds())
    sb.stop()


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2000, help="calls of each write kind")
    parser.add_argument("--clients", type=int, default=8, help="client threads (keep-alive connections)")
    args = parser.parse_args()

    day = (dt.datetime.now(SAO_PAULO).date() - dt.timedelta(days=1)).isoformat()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=serve, args=(child, args.services, day), daemon=True)
    proc.start()
    env = parent.recv()
    local = threading.local()

    def client(system: str) -> httpx.Client:
        key = f"c_{system}"
        if not hasattr(local, key):
            setattr(local, key, httpx.Client(
                base_url=env[f"CARINHO_{system.upper()}_URL"],
                headers={"Authorization": f"Bearer {env[f'CARINHO_{system.upper()}_TOKEN']}"}, timeout=30))
        return getattr(local, key)

    def invoice(i: int) -> float:
        started = time.perf_counter()
        r = client("financeiro").post("/api/invoices", headers={"Idempotency-Key": f"bench:inv:{i}"}, json={
            "client_id": 1, "operacao_service_id": 100_000 + i, "due_date": day,
            "items": [{"description": "Serviço de cuidador - cuidador_idoso", "hours": 6, "unit_price": 32.5,
                       "total": 195.0}]})
        assert r.status_code == 201, r.text
        return time.perf_counter() - started

    def billed(i: int) -> float:
        started = time.perf_counter()
        r = client("operacao").put(f"/api/v1/services/{100_000 + i}/billed",
                                   headers={"Idempotency-Key": f"bench:billed:{i}"}, json={"invoice_id": i + 1})
        assert r.status_code == 200, r.text
        return time.perf_counter() - started

    def cpu() -> float:
        parent.send("cpu?")
        return parent.recv()

    rows = []
    with ThreadPoolExecutor(args.clients) as pool:
        for name, fn in (("POST /api/invoices", invoice), ("PUT /services/{id}/billed", billed)):
            before, started = cpu(), time.perf_counter()
            times = list(pool.map(fn, range(args.calls)))
            wall, used = time.perf_counter() - started, cpu() - before
            rows.append((name, args.calls, times, wall, used))

    # the feed, page by page, as the hub reads it (links.next)
    feed = client("operacao")
    times, seen = [], 0
    before, started = cpu(), time.perf_counter()
    url, params = "/api/v1/services/completed", {"date": day}
    while url:
        t0 = time.perf_counter()
        body = feed.get(url, params=params).json()
        times.append(time.perf_counter() - t0)
        seen += len(body["data"])
        url, params = body["links"]["next"], None
    wall, used = time.perf_counter() - started, cpu() - before
    rows.append((f"GET completed feed ({seen} items)", len(times), times, wall, used))
    parent.send("stop")
    proc.join(timeout=30)

    load = os.getloadavg()
    print(f"sandbox alone: {args.services} services seeded, {args.clients} client threads, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'call':<34} {'calls':>6} {'p50 ms':>7} {'p95 ms':>7} {'calls/s':>8} {'sandbox CPU ms/call':>20}")
    for name, count, times, wall, used in rows:
        q = statistics.quantiles(times, n=20) if len(times) > 1 else [times[0]] * 19
        print(f"{name:<34} {count:>6} {statistics.median(times) * 1000:>7.2f} {q[18] * 1000:>7.2f} "
              f"{count / wall:>8.0f} {used / count * 1000:>20.2f}")
    if seen != args.services:
        sys.exit(f"the feed returned {seen} items, expected {args.services}")


if __name__ == "__main__":
    main()
