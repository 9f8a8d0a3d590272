"""Health endpoints: liveness, and the detailed check ops and load balancers use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.destinations import breakers, pauses
from carinho_pipelines.kernel import settings

from . import runs
from carinho_pipelines.store import StoreUnavailable, utcnow

ZAPI_STATUS_CACHE_SECONDS = 30


async def health(_request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok", "timestamp": utcnow().isoformat()})


async def ready(request: Request) -> JSONResponse:
    """Readiness: the event store answers (nothing else: a probe is a plain GET, and a
    Dagster or Z-API outage must not take the relay out of the load balancer, since it
    still stores every webhook). 503 while the store is down."""
    store = request.app.state.store
    try:
        latency = await run_in_threadpool(store.ping)
    except StoreUnavailable as exc:
        return JSONResponse({"status": "unavailable", "store": {"status": "error", "message": str(exc)},
                             "timestamp": utcnow().isoformat()}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", "store": {"status": "ok", "latency_ms": round(latency, 1)},
                         "timestamp": utcnow().isoformat()})


def _check_dagster() -> dict[str, Any]:
    if not runs.configured():
        return {"status": "unconfigured", "message": "DAGSTER_HOME is not set"}
    start = time.monotonic()
    runs.instance().get_runs_count()
    return {"status": "ok", "latency_ms": round((time.monotonic() - start) * 1000, 1)}


_zapi_cache: dict[str, Any] = {}


async def _check_zapi() -> dict[str, Any]:
    base = settings.env("ZAPI_BASE_URL")
    instance, token = settings.env("ZAPI_INSTANCE_ID"), settings.env("ZAPI_TOKEN")
    if not (base and instance and token):
        return {"status": "unconfigured"}
    cached = _zapi_cache.get("value")
    if cached and time.monotonic() - _zapi_cache["at"] < ZAPI_STATUS_CACHE_SECONDS:
        return cached
    headers = {"Client-Token": settings.env("ZAPI_CLIENT_TOKEN", "") or ""}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=2.0)) as client:
            resp = await client.get(f"{base.rstrip('/')}/instances/{instance}/token/{token}/status", headers=headers)
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        connected = bool(resp.status_code == 200 and body.get("connected"))
        value = {
            "status": "ok" if connected else "disconnected",
            "connected": connected,
            "smartphoneConnected": bool(body.get("smartphoneConnected")),
            "error": body.get("error") if not connected else None,
        }
    except httpx.HTTPError as exc:
        value = {"status": "unreachable", "connected": False, "error": exc.__class__.__name__}
    _zapi_cache.update(value=value, at=time.monotonic())
    return value


async def health_detailed(request: Request) -> JSONResponse:
    """Store, Dagster storage, Z-API status and the circuit breakers; 503 when any of
    them is degraded (an open or half-open breaker is listed as ``breaker:<system>``)."""
    store = request.app.state.store
    checks: dict[str, Any] = {}
    try:
        latency = await run_in_threadpool(store.ping)
        checks["store"] = {"status": "ok", "dialect": store.dialect, "latency_ms": round(latency, 1)}
    except StoreUnavailable as exc:
        checks["store"] = {"status": "error", "message": str(exc)}
    try:
        checks["dagster"] = await asyncio.wait_for(run_in_threadpool(_check_dagster), timeout=10)
    except Exception as exc:  # any failure of Dagster's storage is "degraded", never a 500
        checks["dagster"] = {"status": "error", "message": exc.__class__.__name__}
    checks["zapi"] = await _check_zapi()
    try:
        state = await run_in_threadpool(store.whatsapp_connection_state)
    except Exception:
        state = None
    zapi_connected = checks["zapi"].get("connected")
    whatsapp = {
        "connected": bool(zapi_connected) if zapi_connected is not None else (state or {}).get("connected"),
        "since": state["since"].isoformat() if state and state.get("since") else None,
    }
    degraded = [
        name for name, check in checks.items() if check.get("status") not in ("ok", "unconfigured")
    ]
    try:
        breaker_states = await run_in_threadpool(breakers.states, store, (*settings.SYSTEMS, "email"))
    except Exception:
        breaker_states = {}
    # a destination whose breaker is not closed is failing fast: the hub is degraded
    # (CONTRACTS §2.3: 503 when degraded; readiness probes read only checks.store)
    degraded += [f"breaker:{name}" for name, state in sorted(breaker_states.items()) if state != breakers.CLOSED]
    try:  # paused by ops on purpose: shown, not "degraded"
        paused = await run_in_threadpool(pauses.active, store)
    except Exception:
        paused = {}
    body = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "timestamp": utcnow().isoformat(),
        "checks": checks,
        "whatsapp": whatsapp,
        "breakers": breaker_states,
        "paused": paused,
    }
    return JSONResponse(body, status_code=503 if degraded else 200)
