"""Throughput of ``operacao_financeiro`` over N completed services (sandbox seeded).

    .venv/bin/python benchmarks/sync_throughput.py               # 1k and 10k
    .venv/bin/python benchmarks/sync_throughput.py --sizes 1000 5000 10000

Each size runs in a fresh process (clean peak memory) with the sandbox in another
process (its bookkeeping is not the hub's cost) and a fresh PostgreSQL database for
the sync ledger (``CARINHO_TEST_PG_URL``, default postgresql://postgres@127.0.0.1:5432/postgres).
It reports the first run (N invoices + N billed marks over HTTP, ledger in PostgreSQL),
an idempotent re-run of the same day (all skipped, nothing written), rows/s and the
process's peak RSS, then how the cost grows from the smallest to the largest size.

CPU per row is split by process: the hub (this process: Dagster, pandas, httpx, the
ledger's SQLAlchemy), the sandbox (its own ``getrusage``) and the PostgreSQL backends of
the ledger's connections (``/proc/<pid>/stat``); "sandbox share" is the sandbox's part
of the three. The sandbox's own cost per call is measured by ``sandbox_calls.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG_ADMIN_URL = os.environ.get("CARINHO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def services(n: int, day: dt.date) -> list[dict]:
    done = dt.datetime.combine(day, dt.time(16), SAO_PAULO).isoformat()
    return [
        {"id": 100_000 + i, "client_id": 1 + i % 500, "service_type": "cuidador_idoso", "hours": 6,
         "hourly_rate": 32.5, "total": 195.0 + (25.0 if i % 3 == 0 else 0.0),
         "extras": [{"description": "Deslocamento", "value": 25.0}] if i % 3 == 0 else [],
         "completed_at": done, "billed": False}
        for i in range(n)
    ]


def serve_sandbox(conn, n: int, day: str) -> None:
    from carinho_sandbox import Sandbox

    sb = Sandbox(base_port=0).start()
    sb.seed({"operacao": {"services": services(n, dt.date.fromisoformat(day))}})
    conn.send(sb.env())
    while (msg := conn.recv()) != "stop":
        if msg == "cpu?":
            conn.send((cpu_seconds(), len(sb.systems["operacao"].calls) + len(sb.systems["financeiro"].calls)))
        elif msg == "invoices?":
            conn.send(len(sb.records("financeiro", "invoices")))
    sb.stop()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu(conn, database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database`` (same machine)."""
    import sqlalchemy as sa

    pids = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database}).scalars()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def one(n: int, concurrency: int | None) -> dict:
    import sqlalchemy as sa

    day = (dt.datetime.now(SAO_PAULO).date() - dt.timedelta(days=1)).isoformat()
    parent, child = multiprocessing.Pipe()
    sandbox = multiprocessing.get_context("fork").Process(target=serve_sandbox, args=(child, n, day), daemon=True)
    sandbox.start()
    os.environ.update(parent.recv())

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"carinho_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        from carinho_pipelines.store.migrate import upgrade

        upgrade(url)
        os.environ["CARINHO_DATABASE_URL"] = url
        import dagster

        from carinho_pipelines import syncs
        from carinho_pipelines.resources import build_resources

        defs = dagster.Definitions.merge(syncs.defs, dagster.Definitions(
            resources={**build_resources(), syncs.LEDGER_KEY: syncs.SyncLedgerResource(database_url=url)}))
        job = defs.resolve_job_def("operacao_financeiro")
        instance = dagster.DagsterInstance.ephemeral()
        config = {"ops": {"sync_operacao_financeiro": {"config": {"concurrency": concurrency} if concurrency else {}}}}
        rss_before = rss_mb()

        def sandbox_cpu() -> tuple[float, int]:
            parent.send("cpu?")
            return parent.recv()

        def timed() -> tuple[float, dict, dict]:
            with admin.connect() as conn:
                pg_before = backend_cpu(conn, name)
            sb_before, calls_before = sandbox_cpu()
            hub_before = cpu_seconds()
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, partition_key=day, run_config=config)
            elapsed = time.perf_counter() - started
            hub = cpu_seconds() - hub_before
            sb_after, calls_after = sandbox_cpu()
            with admin.connect() as conn:
                pg = backend_cpu(conn, name) - pg_before
            mats = {e.event_specific_data.materialization.asset_key.to_user_string():
                    {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()
                     if isinstance(v.value, int)}
                    for e in result.get_asset_materialization_events()}
            cpu = {"hub": hub, "sandbox": sb_after - sb_before, "pg": pg, "calls": calls_after - calls_before}
            return elapsed, mats, cpu

        first_s, first, first_cpu = timed()
        rerun_s, rerun, rerun_cpu = timed()
        parent.send("invoices?")
        invoices = parent.recv()
        parent.send("stop")
        sandbox.join(timeout=30)
        return {
            "n": n,
            "first_run_s": round(first_s, 2),
            "rows_per_s": round(first["financeiro/invoices"]["written"] / first_s, 1),
            "rerun_s": round(rerun_s, 2),
            "rerun_rows_per_s": round(n / rerun_s, 1),
            "written": first["financeiro/invoices"]["written"],
            "billed": first["operacao/services_billed"]["confirmed"],
            "rerun_written": rerun["financeiro/invoices"]["written"],
            "invoices_in_financeiro": invoices,
            "rss_before_mb": round(rss_before, 1),
            "peak_rss_mb": round(rss_mb(), 1),
            "calls": first_cpu["calls"],
            "hub_cpu_ms_per_row": round(first_cpu["hub"] / n * 1000, 3),
            "sandbox_cpu_ms_per_row": round(first_cpu["sandbox"] / n * 1000, 3),
            "pg_cpu_ms_per_row": round(first_cpu["pg"] / n * 1000, 3),
            "sandbox_cpu_ms_per_call": round(first_cpu["sandbox"] / max(1, first_cpu["calls"]) * 1000, 3),
            "sandbox_share": round(first_cpu["sandbox"] / max(1e-9, first_cpu["hub"] + first_cpu["sandbox"] + first_cpu["pg"]), 3),
            "rerun_hub_cpu_s": round(rerun_cpu["hub"], 2),
        }
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=None,
                        help="caps the calls in flight per destination (default: the sync's table, "
                        "carinho_pipelines/syncs/limits.py)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.concurrency)))
        return

    rows = []
    for n in args.sizes:
        cap = ["--concurrency", str(args.concurrency)] if args.concurrency else []
        out = subprocess.run([sys.executable, __file__, "--one", str(n), *cap], cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"size {n} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    load = os.getloadavg()
    print(f"operacao_financeiro, concurrency {args.concurrency or 'per destination (limits.py)'}, sandbox over HTTP, "
          f"ledger on PostgreSQL; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"{'services':>9} {'first run':>10} {'rows/s':>8} {'re-run':>8} {'re-run rows/s':>14} "
          f"{'written':>8} {'billed':>7} {'invoices':>9} {'RSS before':>11} {'peak RSS':>9}")
    for r in rows:
        print(f"{r['n']:>9} {r['first_run_s']:>9}s {r['rows_per_s']:>8} {r['rerun_s']:>7}s {r['rerun_rows_per_s']:>14} "
              f"{r['written']:>8} {r['billed']:>7} {r['invoices_in_financeiro']:>9} {r['rss_before_mb']:>9}MB "
              f"{r['peak_rss_mb']:>7}MB")
    print(f"\n{'services':>9} {'calls':>7} {'hub CPU ms/row':>15} {'sandbox ms/row':>15} {'PostgreSQL ms/row':>18} "
          f"{'sandbox share':>14} {'sandbox ms/call':>16} {'re-run hub CPU':>15}")
    for r in rows:
        print(f"{r['n']:>9} {r['calls']:>7} {r['hub_cpu_ms_per_row']:>15} {r['sandbox_cpu_ms_per_row']:>15} "
              f"{r['pg_cpu_ms_per_row']:>18} {r['sandbox_share'] * 100:>13.0f}% {r['sandbox_cpu_ms_per_call']:>16} "
              f"{r['rerun_hub_cpu_s']:>14}s")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"\n{a['n']} → {b['n']} services ({b['n'] / a['n']:g}x): time x{b['first_run_s'] / a['first_run_s']:.1f}, "
              f"re-run time x{b['rerun_s'] / a['rerun_s']:.1f}, "
              f"peak RSS growth {b['peak_rss_mb'] - b['rss_before_mb']:.0f}MB vs "
              f"{a['peak_rss_mb'] - a['rss_before_mb']:.0f}MB during the runs")
    bad = [r for r in rows if r["invoices_in_financeiro"] != r["n"] or r["rerun_written"] != 0]
    if bad:
        sys.exit(f"wrong results: {bad}")


if __name__ == "__main__":
    main()
