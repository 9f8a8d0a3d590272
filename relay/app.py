"""The relay's Starlette application (``uvicorn relay.app:app``)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from . import dlq_api, events_api, health, logs, openapi, status_api, submit, sync_api, webhooks
from .errors import EXCEPTION_HANDLERS
from .nul_guard import RejectNul
from carinho_pipelines.store import EventStore

routes = [
    Route("/health", health.health, methods=["GET"]),
    Route("/health/detailed", health.health_detailed, methods=["GET"]),
    Route("/status", status_api.status, methods=["GET"]),
    Route("/metrics", status_api.metrics, methods=["GET"]),
    Route("/openapi.json", openapi.openapi, methods=["GET"], include_in_schema=False),
    Route("/docs", openapi.docs, methods=["GET"], include_in_schema=False),
    Mount(openapi.DOCS_ASSETS, app=openapi.docs_assets(), name="docs-assets"),
    Route("/webhooks/whatsapp", webhooks.whatsapp_webhook, methods=["POST"]),
    Route("/webhooks/whatsapp/status", webhooks.whatsapp_status_webhook, methods=["POST"]),
    Route("/webhooks/site/lead", webhooks.site_lead, methods=["POST"]),
    Route("/webhooks/crm/client-registered", webhooks.crm_client_registered, methods=["POST"]),
    Route("/webhooks/operacao/service-completed", webhooks.operacao_service_completed, methods=["POST"]),
    Route("/webhooks/financeiro/payment", webhooks.financeiro_payment, methods=["POST"]),
    Route("/webhooks/financeiro/payout", webhooks.financeiro_payout, methods=["POST"]),
    Route("/webhooks/cuidadores/feedback", webhooks.cuidadores_feedback, methods=["POST"]),
    Route("/webhooks/systems/{system}", webhooks.system_webhook, methods=["POST"]),
    Route("/api/events", webhooks.post_event, methods=["POST"]),
    Route("/api/events", events_api.list_events, methods=["GET"]),
    Route("/api/events/{id}", events_api.get_event, methods=["GET"]),
    Route("/api/dlq", dlq_api.list_items, methods=["GET"]),
    Route("/api/dlq/stats", dlq_api.stats, methods=["GET"]),
    Route("/api/dlq/retry-all", dlq_api.retry_all, methods=["POST"]),
    Route("/api/dlq/{id}", dlq_api.get_item, methods=["GET"]),
    Route("/api/dlq/{id}/retry", dlq_api.retry, methods=["POST"]),
    Route("/api/dlq/{id}/archive", dlq_api.archive, methods=["POST"]),
    Route("/api/sync", sync_api.list_syncs, methods=["GET"]),
    Route("/api/sync/{name}/run", sync_api.run_sync, methods=["POST"]),
]


def create_app(store: EventStore | None = None) -> Starlette:
    logs.install()
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, middleware=[Middleware(RejectNul)])
    app.state.store = store or EventStore()
    app.state.submitter = submit.Submitter(app.state.store) if submit.enabled() else None
    return app


app = create_app()
