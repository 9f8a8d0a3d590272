"""The relay stays light (no ``import dagster``) and a restart loses nothing it
acknowledged (issue 2: "restart of the relay keeps every acknowledged event")."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from carinho_pipelines.store import EventStore
from tests.relay.conftest import Relay

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_relay_app_does_not_import_dagster(tmp_path):
    env = {**os.environ, "CARINHO_DATA_DIR": str(tmp_path), "CARINHO_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    code = (
        "import sys, relay.app\n"
        "leaked = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.') or m.startswith('dagster_'))\n"
        "print(' '.join(leaked) or 'clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean", f"relay.app imports dagster: {out.stdout.strip()[:500]}"


def test_the_domain_modules_the_relay_reads_through_do_not_import_dagster(tmp_path):
    """The DLQ, monitoring, destinations and people modules the relay calls keep Dagster
    off their module level (it is imported by the functions that read runs)."""
    env = {**os.environ, "CARINHO_DATA_DIR": str(tmp_path)}
    modules = ["carinho_pipelines.dlq", "carinho_pipelines.dlq.items", "carinho_pipelines.monitoring.metrics",
               "carinho_pipelines.monitoring.alerts", "carinho_pipelines.destinations.pauses",
               "carinho_pipelines.destinations.limits", "carinho_pipelines.people.erasure",
               "carinho_pipelines.events.ledger", "carinho_pipelines.store"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "leaked = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.'))\n"
        "print(' '.join(leaked) or 'clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean", out.stdout.strip()[:500]


def _lead(i: int) -> dict:
    return {"name": f"Cliente {i}", "phone": "11988887777", "message": "x" * 500, "idempotency_key": f"restart-{i}"}


def test_restarted_relay_keeps_every_acknowledged_event_and_answers_duplicates(store_url, hub_env):
    first = Relay(EventStore(store_url))
    try:
        with ThreadPoolExecutor(8) as pool:  # concurrent, as the load balancer delivers them
            answers = list(pool.map(lambda i: first.post("/webhooks/site/lead", "site", json=_lead(i)), range(40)))
    finally:
        first.close()  # the server stops; the engine is disposed
    assert [a.status_code for a in answers] == [202] * 40
    acked = {f"restart-{i}": a.json()["event_id"] for i, a in enumerate(answers)}
    assert not any(a.json()["duplicate"] for a in answers)

    second = Relay(EventStore(store_url))  # a new server over the same store
    try:
        rows = second.rows()
        assert {r["idempotency_key"]: r["id"] for r in rows} == acked
        assert all(r["payload"]["message"] == "x" * 500 for r in rows)

        again = second.post("/webhooks/site/lead", "site", json=_lead(7))
        assert again.status_code == 202
        assert again.json() == {"event_id": acked["restart-7"], "duplicate": True, "status": "received"}

        fresh = second.post("/webhooks/site/lead", "site", json=_lead(40))
        assert fresh.status_code == 202 and fresh.json()["duplicate"] is False
        assert fresh.json()["event_id"] not in acked.values()
        assert len(second.rows()) == 41
    finally:
        second.close()
