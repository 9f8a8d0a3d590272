"""The relay's Starlette application: ``uvicorn --factory relay.app:create_app``.

One route table; cross-cutting concerns are middleware (NUL guard, the operations API's
key authentication); the lifespan owns what lives as long as the app: the event store's
engine, the group committer, the ingest limiter, the direct submitter and the Dagster
instance accessor, and drains and disposes them on shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from carinho_pipelines.store import EventStore

from . import destinations_api, dlq_api, events_api, health, logs, openapi, privacy_api, runs, status_api, submit, sync_api, webhooks
from .apikeys import ApiKeyBackend, forbidden_handler, on_auth_error
from .errors import EXCEPTION_HANDLERS, http_exception_handler
from .group_commit import GroupCommitter
from .nul_guard import RejectNul

ROUTES: list[BaseRoute] = [
    Route("/health", health.health, methods=["GET"]),
    Route("/health/ready", health.ready, methods=["GET"]),
    Route("/health/detailed", health.health_detailed, methods=["GET"]),
    Route("/status", status_api.status, methods=["GET"]),
    Route("/metrics", status_api.metrics, methods=["GET"]),
    Route("/openapi.json", openapi.openapi, methods=["GET"], include_in_schema=False),
    Route("/docs", openapi.docs, methods=["GET"], include_in_schema=False),
    Mount(openapi.DOCS_ASSETS, app=openapi.docs_assets(), name="docs-assets"),
    Route("/webhooks/whatsapp", webhooks.whatsapp_webhook, methods=["POST"]),
    Route("/webhooks/whatsapp/status", webhooks.whatsapp_status_webhook, methods=["POST"]),
    *(Route(w.path, webhooks.webhook_endpoint(w), methods=["POST"]) for w in webhooks.WEBHOOK_ROUTES),
    Route("/webhooks/systems/{system}", webhooks.system_webhook, methods=["POST"]),
    Route("/api/events", webhooks.post_event, methods=["POST"]),
    Route("/api/events", events_api.list_events, methods=["GET"]),
    Route("/api/events/{id}", events_api.get_event, methods=["GET"]),
    Route("/api/dlq", dlq_api.list_items, methods=["GET"]),
    Route("/api/dlq/stats", dlq_api.stats, methods=["GET"]),
    Route("/api/dlq/retry-all", dlq_api.retry_all, methods=["POST"]),
    Route("/api/dlq/recover", dlq_api.recover, methods=["POST"]),
    Route("/api/dlq/{id}", dlq_api.get_item, methods=["GET"]),
    Route("/api/dlq/{id}/retry", dlq_api.retry, methods=["POST"]),
    Route("/api/dlq/{id}/archive", dlq_api.archive, methods=["POST"]),
    Route("/api/sync", sync_api.list_syncs, methods=["GET"]),
    Route("/api/sync/{name}/run", sync_api.run_sync, methods=["POST"]),
    Route("/api/destinations", destinations_api.list_destinations, methods=["GET"]),
    Route("/api/destinations/{name}/pause", destinations_api.pause, methods=["POST"]),
    Route("/api/destinations/{name}/resume", destinations_api.resume, methods=["POST"]),
    Route("/api/privacy/erase", privacy_api.erase, methods=["POST"]),
]


async def _http_error(request: Request, exc: Exception) -> object:
    assert isinstance(exc, HTTPException)
    return forbidden_handler(request, exc) or await http_exception_handler(request, exc)


def create_app(store: EventStore | None = None) -> Starlette:
    """The relay; ``store`` is the caller's (a test's) to dispose, else the app makes its own."""
    logs.install()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = app.state.store is None
        if own:
            app.state.store = EventStore()
        state_store: EventStore = app.state.store
        app.state.ingest_limiter = anyio.CapacityLimiter(state_store.write_slots)
        app.state.group_committer = GroupCommitter(state_store)
        app.state.submitter = submit.Submitter(state_store) if submit.enabled() else None
        try:
            yield
        finally:
            await app.state.group_committer.drain()
            if app.state.submitter is not None:
                await app.state.submitter.close()
            runs.close()
            if own:
                state_store.engine.dispose()
                app.state.store = None

    app = Starlette(
        routes=ROUTES,
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: _http_error},
        middleware=[Middleware(RejectNul),
                    Middleware(AuthenticationMiddleware, backend=ApiKeyBackend(), on_error=on_auth_error)],
        lifespan=lifespan,
    )
    app.state.store = store
    return app
