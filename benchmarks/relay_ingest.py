"""Durable ingest of the relay on PostgreSQL, beside the two ceilings it sits under.

    .venv/bin/python benchmarks/relay_ingest.py                       # 20 s phases, 32 connections, 500 ev/s
    .venv/bin/python benchmarks/relay_ingest.py --duration 10 --concurrency 64 --rate 800 --workers 2

What runs (all on loopback, one fresh PostgreSQL database created on
``CARINHO_TEST_PG_URL`` — default postgresql://postgres@127.0.0.1:5432/postgres —
migrated with ``carinho_pipelines.store.migrate.upgrade`` and dropped at the end):

* the **relay** as in production: ``python -m carinho_pipelines.cli relay --port P
  --workers W`` (uvicorn, access log on) in its own process, with
  ``CARINHO_DATABASE_URL`` and ``CARINHO_SITE_TOKEN`` in its environment;
* the **load generator** in another process: an asyncio (uvloop) HTTP/1.1 keep-alive
  client that posts ~2 KB site leads (``POST /webhooks/site/lead``, a unique
  ``idempotency_key`` per request) over N connections. It is deliberately lean (raw
  sockets, pre-rendered requests) so it takes as little of the 2 cores as possible;
  the table shows how the CPU was split between relay, PostgreSQL and client;
* (a) closed loop: N connections, each posting as soon as its previous answer came,
  for ``--duration`` s after a 2 s warm-up → sustained events/s;
* (b) open loop: ``--rate`` requests/s on a fixed schedule for ``--duration`` s;
  latency is measured from the *scheduled* send time (no coordinated omission);
* (c) HTTP ceiling: a bare Starlette app that reads the body and answers 202, served
  by ``uvicorn.run`` exactly like ``carinho relay`` (same workers, loop, parser, log
  level), driven by the same client in (a) and (b) modes;
* (d) store ceiling: N threads in their own process, each calling
  ``EventStore.ingest`` (the relay's INSERT … ON CONFLICT DO NOTHING RETURNING, same
  engine and pool) in a plain loop with the same payload;
* (e) VmRSS of every relay process (uvicorn's supervisor and workers when W > 1) idle
  after start-up and idle after the load;
* (f) durability: after the relay is stopped (SIGTERM), the rows in the database
  must be exactly the ids the client got in its 202s.

The whole run takes about 5 × (duration + 2) s plus ~10 s of set-up (< 3 min at the
defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG_ADMIN_URL = os.environ.get("CARINHO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SITE_TOKEN = "bench-site-token-" + uuid.uuid4().hex[:12]
PATH = "/webhooks/site/lead"
WARMUP_S = 2.0

# ~2 KB site lead (the form's free text is most of it), with a unique idempotency key.
_MESSAGE = (
    "Olá! Estou procurando uma cuidadora para a minha mãe, que tem 82 anos e mora sozinha em "
    "Pinheiros. Ela precisa de ajuda com a medicação, o banho e as refeições, de segunda a sexta, "
    "das 8h às 18h, e às vezes aos sábados de manhã. Ela usa andador e tem um pouco de dificuldade "
    "para ouvir. Gostaria de saber os valores, se as profissionais têm curso de cuidadora e como "
    "funciona a substituição nas férias. "
) * 4
LEAD = {
    "name": "Maria Aparecida dos Santos",
    "phone": "(11) 98888-7777",
    "email": "maria.santos@example.com.br",
    "city": "São Paulo",
    "neighbourhood": "Pinheiros",
    "service_type": "cuidador_idoso",
    "urgency": "esta_semana",
    "message": _MESSAGE[:1650],
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "cuidador-idoso-sp",
    "page": "https://carinho.com.vc/cuidador-de-idosos/sao-paulo",
}


def lead_body_parts() -> tuple[bytes, bytes]:
    """The JSON body split around the idempotency key (prefix + key + suffix)."""
    marker = "@@KEY@@"
    text = json.dumps({**LEAD, "idempotency_key": marker}, ensure_ascii=False, separators=(",", ":"))
    head, tail = text.encode().split(marker.encode())
    return head, tail


# -- helpers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


def _all_stats() -> dict[int, tuple[int, str, int]]:
    """pid → (ppid, comm, utime+stime ticks) for every process we can read."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry)] = (int(fields[1]), comm, int(fields[11]) + int(fields[12]))
    return out


def descendants(root: int, stats: dict | None = None) -> list[int]:
    stats = stats or _all_stats()
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, (ppid, _c, _t) in stats.items() if ppid == parent]
        found += kids
        frontier += kids
    return [p for p in found if p in stats]


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop()."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, **groups: int) -> None:
        self.roots = groups  # name → root pid (its descendants count too)

    def _sample(self) -> dict[str, float]:
        stats = _all_stats()
        out = {name: sum(stats[p][2] for p in descendants(pid, stats)) / self.TICK for name, pid in self.roots.items()}
        out["postgres"] = sum(t for (_pp, comm, t) in stats.values() if comm.startswith("postgres")) / self.TICK
        return out

    def start(self) -> None:
        self.t0, self.s0 = time.monotonic(), self._sample()

    def stop(self) -> dict[str, float]:
        wall, s1 = time.monotonic() - self.t0, self._sample()
        return {name: round(100 * (s1[name] - self.s0[name]) / wall) for name in s1}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_of(root: int) -> list[float]:
    return [round(rss_mb(p), 1) for p in descendants(root)]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summary(latencies: list[float]) -> dict[str, float]:
    values = sorted(latencies)
    return {
        "p50_ms": round(1000 * percentile(values, 0.50), 2),
        "p99_ms": round(1000 * percentile(values, 0.99), 2),
        "max_ms": round(1000 * values[-1], 2) if values else float("nan"),
    }


# -- load generator (its own process) ---------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def load_main(cfg: dict) -> None:
    """Posts leads to cfg["port"]; prints "start" and "end", writes results to cfg["out"]."""
    import asyncio

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    clock = time.perf_counter  # uvloop's loop.time() has a 1 ms resolution
    head, tail = lead_body_parts()
    prefix = cfg["prefix"]
    request_head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{cfg['port']}\r\nAuthorization: Bearer {cfg['token']}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    ids: list[int] = []
    errors: dict[str, int] = {}
    duplicates = 0
    counter = 0

    def build() -> bytes:
        nonlocal counter
        counter += 1
        body = head + f"{prefix}{counter:09d}".encode() + tail
        return request_head + str(len(body)).encode() + b"\r\n\r\n" + body

    async def send(conn: list, raw: bytes) -> bool:
        nonlocal duplicates
        try:
            if conn[0] is None:
                conn[0], conn[1] = await asyncio.open_connection("127.0.0.1", cfg["port"])
            reader, writer = conn
            writer.write(raw)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            match = _CONTENT_LENGTH.search(header)
            body = await reader.readexactly(int(match.group(1))) if match else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if conn[1] is not None:
                conn[1].close()
            conn[0] = conn[1] = None
            return False
        if status != 202:
            errors[str(status)] = errors.get(str(status), 0) + 1
            return False
        answer = json.loads(body)
        ids.append(answer["event_id"])
        duplicates += bool(answer.get("duplicate"))
        return True

    async def closed(conns: list, seconds: float, latencies: list | None) -> int:
        deadline = clock() + seconds
        ok = 0

        async def worker(conn: list) -> None:
            nonlocal ok
            while clock() < deadline:
                raw = build()
                t0 = clock()
                if await send(conn, raw):
                    ok += 1
                    if latencies is not None:
                        latencies.append(clock() - t0)

        await asyncio.gather(*(worker(c) for c in conns))
        return ok

    async def opened(conns: list, rate: float, seconds: float, latencies: list) -> int:
        queue: asyncio.Queue = asyncio.Queue()
        total = int(rate * seconds)
        start = clock() + 0.05
        ok = 0

        async def ticker() -> None:
            for i in range(total):
                due = start + i / rate
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.put_nowait(due)
            for _ in conns:
                queue.put_nowait(None)

        async def worker(conn: list) -> None:
            nonlocal ok
            while (due := await queue.get()) is not None:
                if await send(conn, build()):
                    ok += 1
                    latencies.append(clock() - due)  # from the scheduled time

        await asyncio.gather(ticker(), *(worker(c) for c in conns))
        return ok

    async def run() -> dict:
        conns = [[None, None] for _ in range(cfg["concurrency"])]
        if cfg["warmup"]:
            await closed(conns, cfg["warmup"], None)
        latencies: list[float] = []
        print("start", flush=True)
        t0 = time.perf_counter()
        if cfg["mode"] == "closed":
            ok = await closed(conns, cfg["duration"], latencies)
        else:
            ok = await opened(conns, cfg["rate"], cfg["duration"], latencies)
        elapsed = time.perf_counter() - t0
        print("end", flush=True)
        for _reader, writer in conns:
            if writer is not None:
                writer.close()
        return {"ok": ok, "elapsed": elapsed, "rate": ok / elapsed, **summary(latencies)}

    result = asyncio.run(run())
    result.update(acked=len(ids), ids=ids, errors=errors, duplicates=duplicates)
    Path(cfg["out"]).write_text(json.dumps(result))  # not stdout: the event loop left it non-blocking


# -- store ceiling (its own process) -----------------------------------------------


def store_main(cfg: dict) -> None:
    """Threads calling EventStore.ingest in a loop; prints "start" and "end", writes cfg["out"]."""
    import threading

    from carinho_pipelines.store import Envelope, EventStore, utcnow

    store = EventStore(cfg["url"])
    # The relay runs at most store.write_slots ingests at once (the pool's connections);
    # more threads than that would only queue on the pool.
    n_threads = min(cfg["concurrency"], store.write_slots)
    payload = {**LEAD, "phone": "5511988887777"}
    count = [0] * n_threads
    latencies: list[list[float]] = [[] for _ in range(n_threads)]
    phase = {"measure": False, "stop": False}
    errors: dict[str, int] = {}

    def worker(i: int) -> None:
        n = 0
        while not phase["stop"]:
            n += 1
            env = Envelope(event_type="lead.created", source="site", idempotency_key=f"{cfg['prefix']}{i:03d}-{n:09d}",
                           queue="integrations-high", payload=payload, occurred_at=utcnow())
            t0 = time.perf_counter()
            try:
                store.ingest(env)
            except Exception as exc:  # noqa: BLE001 - counted, like a non-202 on the HTTP side
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if phase["measure"]:
                latencies[i].append(time.perf_counter() - t0)
                count[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_threads)]
    for t in threads:
        t.start()
    time.sleep(cfg["warmup"])
    print("start", flush=True)
    phase["measure"] = True
    t0 = time.perf_counter()
    time.sleep(cfg["duration"])
    phase["measure"] = False
    elapsed = time.perf_counter() - t0
    print("end", flush=True)
    phase["stop"] = True
    for t in threads:
        t.join()
    ok = sum(count)
    Path(cfg["out"]).write_text(json.dumps({"ok": ok, "elapsed": elapsed, "rate": ok / elapsed, "errors": errors,
                                            "threads": n_threads, **summary([x for lat in latencies for x in lat])}))


# -- HTTP ceiling -------------------------------------------------------------------


def ceiling_app():
    """A bare Starlette app: reads the body, answers 202 (uvicorn factory)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def accept(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"event_id": 1, "duplicate": False, "status": "received"}, status_code=202)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(PATH, accept, methods=["POST"]), Route("/health", health)])


# -- orchestration ------------------------------------------------------------------


def child(role: str, cfg: dict, cpu: CpuMeter | None = None, **roots: int) -> dict:
    """Run this script as ``role`` in a new process; meter CPU over its measured window.

    The child prints "start" and "end" around its measured window and writes its
    results to a JSON file."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    proc = subprocess.Popen([sys.executable, __file__, role, json.dumps({**cfg, "out": str(out)})],
                            stdout=subprocess.PIPE, text=True)
    meter = CpuMeter(client=proc.pid, **roots)
    split = {}
    for line in proc.stdout:
        line = line.strip()
        if line == "start":
            meter.start()
        elif line == "end":
            split = meter.stop()
    if proc.wait() != 0:
        raise RuntimeError(f"{role} failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    out.unlink()
    result["cpu"] = split
    return result


def start_server(argv: list[str], env: dict, port: int, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"server did not start, see {log}:\n{log.read_text()[-3000:]}")
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def settle_rss(pid: int) -> list[float]:
    time.sleep(1.0)
    return rss_of(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per phase (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections / store threads (default 32)")
    parser.add_argument("--rate", type=float, default=500, help="open-loop events/s (default 500)")
    parser.add_argument("--workers", type=int, default=1, help="carinho relay --workers (default 1)")
    args = parser.parse_args()
    started = time.monotonic()

    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"carinho_bench_relay_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="carinho-bench-relay-"))
    servers: list[subprocess.Popen] = []
    try:
        from carinho_pipelines.store.migrate import upgrade

        upgrade(url)
        env = {
            k: v for k, v in os.environ.items()
            if not (k.startswith("CARINHO_") or k.startswith("ZAPI_") or k == "DAGSTER_HOME")
        }
        env.update(CARINHO_DATABASE_URL=url, CARINHO_SITE_TOKEN=SITE_TOKEN, CARINHO_DATA_DIR=str(tmp),
                   PYTHONPATH=str(REPO))
        load = {"token": SITE_TOKEN, "concurrency": args.concurrency, "duration": args.duration, "rate": args.rate}

        # -- the relay --------------------------------------------------------------
        port = free_port()
        relay = start_server([sys.executable, "-m", "carinho_pipelines.cli", "relay", "--port", str(port),
                              "--workers", str(args.workers)], env, port, tmp / "relay.log")
        servers.append(relay)
        rss_idle = settle_rss(relay.pid)
        relay_closed = child("_load", {**load, "port": port, "mode": "closed", "warmup": WARMUP_S,
                                       "prefix": "bench-relay-closed-"}, relay=relay.pid)
        relay_open = child("_load", {**load, "port": port, "mode": "open", "warmup": 0,
                                     "prefix": "bench-relay-open-"}, relay=relay.pid)
        rss_after = settle_rss(relay.pid)
        stop_server(relay)

        # (f) durability: every 202 is a row, every row was a 202
        acked = set(relay_closed["ids"]) | set(relay_open["ids"])
        with sa.create_engine(url).connect() as conn:
            stored = {r[0] for r in conn.execute(sa.text("SELECT id FROM events WHERE idempotency_key LIKE 'bench-relay-%'"))}
        n_acks = relay_closed["acked"] + relay_open["acked"]
        durable = stored == acked and n_acks == len(acked)

        # -- HTTP ceiling ------------------------------------------------------------
        port = free_port()
        serve = ("import uvicorn, sys; uvicorn.run('relay_ingest:ceiling_app', factory=True, app_dir=sys.argv[1], "
                 f"host='127.0.0.1', port={port}, workers={args.workers}, log_level='info')")
        ceiling = start_server([sys.executable, "-c", serve, str(REPO / "benchmarks")], env, port, tmp / "ceiling.log")
        servers.append(ceiling)
        http_closed = child("_load", {**load, "port": port, "mode": "closed", "warmup": WARMUP_S,
                                      "prefix": "ceiling-"}, relay=ceiling.pid)
        http_open = child("_load", {**load, "port": port, "mode": "open", "warmup": 0, "prefix": "ceiling-"},
                          relay=ceiling.pid)
        stop_server(ceiling)

        # -- store ceiling -----------------------------------------------------------
        store = child("_store", {"url": url, "concurrency": args.concurrency, "duration": args.duration,
                                 "warmup": WARMUP_S, "prefix": "bench-store-"})
    finally:
        for proc in servers:
            stop_server(proc)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    # -- report ------------------------------------------------------------------------
    body = len(lead_body_parts()[0]) + len(lead_body_parts()[1]) + len("bench-relay-closed-000000001")

    def cpu(r: dict) -> str:
        c = r["cpu"]
        server = c.get("relay", 0)
        return f"server {server}% · pg {c['postgres']}% · client {c['client']}%" if "relay" in c else \
            f"pg {c['postgres']}% · client {c['client']}%"

    def errs(r: dict) -> str:
        return ", ".join(f"{k}×{v}" for k, v in r.get("errors", {}).items()) or "-"

    rows = [
        ("relay, closed loop", relay_closed, True),
        (f"relay, open loop {args.rate:g}/s", relay_open, False),
        ("HTTP ceiling, closed loop", http_closed, True),
        (f"HTTP ceiling, open loop {args.rate:g}/s", http_open, False),
        (f"store ceiling, {store['threads']} threads", store, True),
    ]
    print()
    print(f"relay ingest on PostgreSQL — body {body} B, {args.concurrency} connections/threads, "
          f"{args.duration:g} s per phase, {args.workers} uvicorn worker(s), {os.cpu_count()} CPUs")
    print()
    print(f"| {'phase':<32} | {'events/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>8} | {'errors':<8} | CPU (of {100 * (os.cpu_count() or 1)}%)")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 36}")
    for label, r, _closed in rows:
        print(f"| {label:<32} | {r['rate']:>9.0f} | {r['p50_ms']:>7.2f} | {r['p99_ms']:>7.2f} | {r['max_ms']:>8.2f} "
              f"| {errs(r):<8} | {cpu(r)}")
    smaller = min(http_closed["rate"], store["rate"])
    print()
    print(f"relay / HTTP ceiling   = {relay_closed['rate'] / http_closed['rate']:.2f}")
    print(f"relay / store ceiling  = {relay_closed['rate'] / store['rate']:.2f}")
    print(f"relay / smaller ceiling = {relay_closed['rate'] / smaller:.2f}  (goal ≥ 0.50)")
    print(f"relay RSS idle after start-up: {rss_idle} MB; idle after the load: {rss_after} MB (goal < 120 MB/process)")
    print(f"durability: {n_acks} acknowledged 202s, {len(stored)} rows after the relay stopped, "
          f"{relay_closed['duplicates'] + relay_open['duplicates']} answered as duplicates → "
          f"{'OK: every acknowledged event is stored' if durable else 'MISMATCH'}")
    goals = [
        ("≥ 1,000 durable events/s", relay_closed["rate"] >= 1000),
        (f"p99 < 50 ms at {args.rate:g}/s", relay_open["p99_ms"] < 50),
        ("within 2× of the smaller ceiling", relay_closed["rate"] * 2 >= smaller),
        ("idle RSS < 120 MB", max(rss_idle + rss_after) < 120),
        ("acked == stored", durable),
    ]
    print("goals: " + " · ".join(f"{g}: {'yes' if ok else 'NO'}" for g, ok in goals))
    print(f"(whole run {time.monotonic() - started:.0f} s)")
    if not durable:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("_load", "_store"):
        (load_main if sys.argv[1] == "_load" else store_main)(json.loads(sys.argv[2]))
    else:
        main()
