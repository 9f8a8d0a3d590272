"""The seven internal systems (and Documentos' inbox), as CONTRACTS §4 and §10 describe them.

Answers look like the Laravel apps they stand in for: objects in ``{"data": ...}``, lists
paged with ``meta``/``links``, validation errors as 422 ``{"message", "errors"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from carinho_pipelines.kernel.privacy import normalize_phone
from carinho_sandbox.faults import SystemLayer
from carinho_sandbox.state import SortKey, SystemState, now_iso

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
SIGNATURE_TOLERANCE = 5 * 60

Endpoint = Callable[[Request], Awaitable[Response]]

#: Collections and the fields each sync feed shows (CONTRACTS §10).
SCHEDULE_FEED_FIELDS = ("id", "client_id", "contract_id", "service_type", "start_date", "end_date", "preferences")
SERVICE_FEED_FIELDS = ("id", "client_id", "service_type", "hours", "hourly_rate", "total", "extras", "completed_at", "billed")
BILLING_FEED_FIELDS = ("id", "client_id", "billing_type", "value", "payment_method")
CAREGIVER_FEED_FIELDS = ("id", "caregiver_id", "changes", "updated_at")


# -- answers -------------------------------------------------------------------------------


def data(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": payload}, status_code=status)


def not_found(what: str) -> JSONResponse:
    return JSONResponse({"message": f"{what} not found."}, status_code=404)


def invalid(errors: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse({"message": "The given data was invalid.", "errors": errors}, status_code=422)


def required(body: dict[str, Any], *fields: str) -> dict[str, list[str]]:
    return {f: [f"The {f} field is required."] for f in fields if body.get(f) is None or body.get(f) == "" or body.get(f) == []}


async def json_body(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    if not raw:
        return {}
    try:
        parsed = await request.json()
    except ValueError:
        return JSONResponse({"message": "Malformed JSON body."}, status_code=400)
    if not isinstance(parsed, dict):
        return JSONResponse({"message": "The body must be a JSON object."}, status_code=400)
    return parsed


def encode_cursor(after: SortKey) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": list(after)}, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> SortKey:
    """The key a cursor continues after; ValueError when it is not one of ours."""
    try:
        after = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["after"]
        kind, value = after
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValueError("malformed cursor") from exc
    if (kind, type(value)) not in ((0, int), (1, str)):
        raise ValueError("malformed cursor")
    return (kind, value)


def paginate(
    request: Request,
    state: SystemState,
    collection: str,
    where: Callable[[dict[str, Any]], bool],
    fields: tuple[str, ...] | None,
) -> Response:
    """A Laravel-style page of ``collection``'s matching records, in id order.

    ``?page=N`` alone is page-number paging (``meta.current_page/last_page/total``);
    every ``links.next`` also carries a ``cursor``: the page after it starts where
    this one stopped, so following ``links.next`` reads each record once, in O(page)
    per call, and neither repeats nor skips a record while others are added or leave
    the feed (a sync confirming what it read). Cursor pages have no ``last_page`` or
    ``total`` (like Laravel's cursor paginator): ``links.next`` is null on the last one.
    """
    try:
        page = max(1, int(request.query_params.get("page", "1")))
        per_page = max(1, min(int(request.query_params.get("per_page", state.page_size)), state.page_size))
    except ValueError:
        return invalid({"page": ["The page and per_page fields must be integers."]})
    raw_cursor = request.query_params.get("cursor")
    after = None
    if raw_cursor:
        try:
            after = decode_cursor(raw_cursor)
        except ValueError:
            return invalid({"cursor": ["The cursor is not valid."]})

    def link(n: int, cursor: str | None = None) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["page"] = str(n)
        if cursor:
            query["cursor"] = cursor
        return f"{request.url.replace(query=urlencode(query))}"

    with state.lock:  # rows share nested values with the records: render before unlocking
        if after is not None:
            chosen = state.select(collection, where, fields, limit=per_page, after=after)
            next_cursor = encode_cursor(chosen.next_after) if chosen.next_after is not None else None
            return JSONResponse({
                "data": chosen.rows,
                "meta": {"current_page": page, "per_page": per_page, "next_cursor": next_cursor,
                         "prev_cursor": None},
                "links": {"first": link(1), "last": None, "prev": None,
                          "next": link(page + 1, next_cursor) if next_cursor else None},
            })
        chosen = state.select(collection, where, fields, limit=per_page, offset=(page - 1) * per_page, count=True)
        total = chosen.total or 0
        last_page = max(1, -(-total // per_page))
        next_cursor = encode_cursor(chosen.next_after) if chosen.next_after is not None else None
        return JSONResponse({
            "data": chosen.rows,
            "meta": {"current_page": page, "last_page": last_page, "per_page": per_page, "total": total},
            "links": {
                "first": link(1),
                "last": link(last_page),
                "prev": link(page - 1) if page > 1 else None,
                "next": link(page + 1, next_cursor) if next_cursor else None,
            },
        })


def by_id(record: dict[str, Any]) -> tuple[int, str]:
    rid = record.get("id")
    return (0, f"{rid:020d}") if isinstance(rid, int) else (1, str(rid))


# -- auth ----------------------------------------------------------------------------------


def token_check(state: SystemState) -> Callable[[dict[str, str]], bool]:
    def check(headers: dict[str, str]) -> bool:
        expected = state.token
        if not expected:
            return True
        candidates = [headers.get("x-internal-token"), headers.get("x-api-key")]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        return any(c is not None and hmac.compare_digest(c.encode(), expected.encode()) for c in candidates)

    return check


def verify_standard_webhook(secret: str, headers: dict[str, str] | Any, body: bytes) -> str | None:
    """``None`` when the Standard-Webhooks signature is valid, else why not."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        if abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE:
            return "webhook-timestamp outside the tolerance"
    except ValueError:
        return "webhook-timestamp is not an integer"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    for part in signatures.split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return None
    return "no matching v1 signature"


def sign_standard_webhook(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed delivery (used by tests and by the demo)."""
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{sig}"}


# -- shared endpoints ----------------------------------------------------------------------


def event_inbox(state: SystemState) -> Endpoint:
    """The canonical-event inbox every system has (CONTRACTS §3 "forward")."""

    async def receive_event(request: Request) -> Response:
        if state.webhook_secret:
            problem = verify_standard_webhook(state.webhook_secret, request.headers, await request.body())
            if problem:
                return JSONResponse({"message": f"Invalid signature: {problem}."}, status_code=401)
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "type", "data")
        if errors:
            return invalid(errors)
        stored = state.insert("events", {
            "id": None,
            "event_id": body.get("id"),
            "type": body["type"],
            "timestamp": body.get("timestamp"),
            "source": body.get("source"),
            "data": body["data"],
            "received_at": now_iso(),
        })
        return data({"id": stored["id"], "event_id": stored["event_id"], "status": "received"}, status=202)

    return receive_event


def system_app(state: SystemState, routes: list[Route]) -> SystemLayer:
    app = Starlette(routes=routes)
    return SystemLayer(app, state, auth=token_check(state))


# -- CRM -----------------------------------------------------------------------------------


def crm_app(state: SystemState) -> SystemLayer:
    def lead_matches(lead: dict[str, Any], phone: str | None) -> bool:
        return phone is not None and normalize_phone(lead.get("phone")) == phone

    async def list_leads(request: Request) -> Response:
        if "phone" in request.query_params:
            phone = normalize_phone(request.query_params["phone"])
            return matching(lambda lead: lead_matches(lead, phone))
        if "email" in request.query_params:
            email = request.query_params["email"].strip().lower()
            return matching(lambda lead: (lead.get("email") or "").lower() == email)
        return paginate(request, state, "leads", lambda lead: True, None)

    def matching(where: Callable[[dict[str, Any]], bool]) -> Response:
        with state.lock:
            return data(state.select("leads", where, None, limit=None).rows)

    async def create_lead(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "name")
        if not body.get("phone") and not body.get("email"):
            errors["phone"] = ["The phone field is required when email is not present."]
        if errors:
            return invalid(errors)
        now = now_iso()
        lead = {
            **body,
            "id": None,
            "phone": normalize_phone(body.get("phone")) if body.get("phone") else None,
            "status": body.get("status", "new"),
            "interaction_count": int(body.get("interaction_count") or 0),
            "last_contact_at": body.get("last_contact_at") or now,
            "created_at": now,
            "updated_at": now,
        }
        return data(state.insert("leads", lead), status=201)

    async def show_lead(request: Request) -> Response:
        lead = state.get("leads", request.path_params["id"])
        return data(lead) if lead else not_found("Lead")

    async def update_lead(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        changes = {k: v for k, v in body.items() if k != "id"}
        if "phone" in changes and changes["phone"]:
            changes["phone"] = normalize_phone(changes["phone"])
        changes["updated_at"] = now_iso()
        lead = state.update("leads", request.path_params["id"], changes)
        return data(lead) if lead else not_found("Lead")

    async def add_interaction(request: Request) -> Response:
        lead_id = request.path_params["id"]
        if state.get("leads", lead_id) is None:
            return not_found("Lead")
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "channel", "direction", "content")
        if errors:
            return invalid(errors)
        at = body.get("received_at") or now_iso()
        with state.lock:
            lead = state.get("leads", lead_id) or {}
            state.update("leads", lead_id, {
                "interaction_count": int(lead.get("interaction_count") or 0) + 1,
                "last_contact_at": at,
                "updated_at": now_iso(),
            })
            interaction = state.insert("interactions", {**body, "id": None, "lead_id": lead.get("id"), "created_at": now_iso()})
        return data(interaction, status=201)

    async def create_client(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "name")
        if errors:
            return invalid(errors)
        client = {**body, "id": None, "created_at": now_iso()}
        if client.get("phone"):
            client["phone"] = normalize_phone(client["phone"])
        return data(state.insert("clients", client), status=201)

    async def show_client(request: Request) -> Response:
        client = state.get("clients", request.path_params["id"])
        return data(client) if client else not_found("Client")

    async def pending_schedules(request: Request) -> Response:
        return paginate(request, state, "pending_schedules", lambda r: not r.get("confirmed_at"), SCHEDULE_FEED_FIELDS)

    async def confirm_schedule(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if state.get("pending_schedules", request.path_params["id"]) is None:
            return not_found("Pending schedule")
        errors = required(body, "operacao_schedule_id")
        if errors:
            return invalid(errors)
        row = state.update("pending_schedules", request.path_params["id"], {
            "operacao_schedule_id": body["operacao_schedule_id"],
            "confirmed_at": now_iso(),
        })
        return data(row)

    async def pending_billing(request: Request) -> Response:
        return paginate(request, state, "contracts", lambda r: not r.get("financeiro_id"), BILLING_FEED_FIELDS)

    async def contract_billing_setup(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if state.get("contracts", request.path_params["id"]) is None:
            return not_found("Contract")
        errors = required(body, "financeiro_id")
        if errors:
            return invalid(errors)
        row = state.update("contracts", request.path_params["id"], {
            "financeiro_id": body["financeiro_id"],
            "billing_configured_at": now_iso(),
        })
        return data(row)

    return system_app(state, [
        Route("/api/v1/leads", list_leads, methods=["GET"]),
        Route("/api/v1/leads", create_lead, methods=["POST"]),
        Route("/api/v1/leads/{id}", show_lead, methods=["GET"]),
        Route("/api/v1/leads/{id}", update_lead, methods=["PUT", "PATCH"]),
        Route("/api/v1/leads/{id}/interactions", add_interaction, methods=["POST"]),
        Route("/api/v1/clients", create_client, methods=["POST"]),
        Route("/api/v1/clients/{id}", show_client, methods=["GET"]),
        Route("/api/v1/sync/pending-schedules", pending_schedules, methods=["GET"]),
        Route("/api/v1/sync/confirm/{id}", confirm_schedule, methods=["POST"]),
        Route("/api/v1/sync/pending-billing-setup", pending_billing, methods=["GET"]),
        Route("/api/v1/contracts/{id}/billing-setup", contract_billing_setup, methods=["POST"]),
        Route("/api/v1/webhooks/events", event_inbox(state), methods=["POST"]),
    ])


# -- Operação ------------------------------------------------------------------------------


def service_day(completed_at: str) -> date | None:
    try:
        moment = datetime.fromisoformat(completed_at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SAO_PAULO)
    return moment.astimezone(SAO_PAULO).date()


def operacao_app(state: SystemState) -> SystemLayer:
    async def create_schedule(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "client_id", "service_type", "start_date")
        if errors:
            return invalid(errors)
        return data(state.insert("schedules", {**body, "id": None, "status": "scheduled", "created_at": now_iso()}), status=201)

    async def show_schedule(request: Request) -> Response:
        row = state.get("schedules", request.path_params["id"])
        return data(row) if row else not_found("Schedule")

    async def completed_services(request: Request) -> Response:
        raw = request.query_params.get("date")
        if not raw:
            return invalid({"date": ["The date field is required."]})
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return invalid({"date": ["The date does not match the format Y-m-d."]})
        # billed services stay listed (billed: true), like the original feed
        return paginate(request, state, "services", lambda r: service_day(r.get("completed_at", "")) == day,
                        SERVICE_FEED_FIELDS)

    async def mark_billed(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if state.get("services", request.path_params["id"]) is None:
            return not_found("Service")
        errors = required(body, "invoice_id")
        if errors:
            return invalid(errors)
        row = state.update("services", request.path_params["id"], {
            "billed": True,
            "invoice_id": body["invoice_id"],
            "billed_at": now_iso(),
        })
        return data(row)

    return system_app(state, [
        Route("/api/v1/schedules", create_schedule, methods=["POST"]),
        Route("/api/v1/schedules/{id}", show_schedule, methods=["GET"]),
        Route("/api/v1/services/completed", completed_services, methods=["GET"]),
        Route("/api/v1/services/{id}/billed", mark_billed, methods=["PUT"]),
        Route("/api/v1/webhooks/events", event_inbox(state), methods=["POST"]),
    ])


# -- Financeiro ----------------------------------------------------------------------------


def financeiro_app(state: SystemState) -> SystemLayer:
    async def create_invoice(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "client_id", "operacao_service_id", "items", "due_date")
        if "items" not in errors and not isinstance(body["items"], list):
            errors["items"] = ["The items field must be a non-empty list."]
        if errors:
            return invalid(errors)
        total = 0.0
        for item in body["items"]:
            if isinstance(item, dict):
                try:
                    total += float(item.get("total") or 0)
                except (TypeError, ValueError):
                    pass
        invoice = {**body, "id": None, "status": "open", "amount": round(total, 2), "created_at": now_iso()}
        return data(state.insert("invoices", invoice), status=201)

    async def show_invoice(request: Request) -> Response:
        row = state.get("invoices", request.path_params["id"])
        return data(row) if row else not_found("Invoice")

    async def billing_setup(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "crm_client_id")
        if errors:
            return invalid(errors)
        return data(state.insert("billing_setups", {**body, "id": None, "status": "active", "created_at": now_iso()}), status=201)

    return system_app(state, [
        Route("/api/invoices", create_invoice, methods=["POST"]),
        Route("/api/invoices/{id}", show_invoice, methods=["GET"]),
        Route("/api/billing/setup", billing_setup, methods=["POST"]),
        Route("/api/webhooks/events", event_inbox(state), methods=["POST"]),
    ])


# -- Cuidadores ----------------------------------------------------------------------------


def cuidadores_app(state: SystemState) -> SystemLayer:
    async def pending_updates(request: Request) -> Response:
        return paginate(request, state, "updates", lambda r: not r.get("confirmed_at"), CAREGIVER_FEED_FIELDS)

    async def confirm_update(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        row = state.update("updates", request.path_params["id"], {"confirmed_at": now_iso(), **({"confirmation": body} if body else {})})
        return data(row) if row else not_found("Pending update")

    return system_app(state, [
        Route("/api/v1/sync/pending-updates", pending_updates, methods=["GET"]),
        Route("/api/v1/sync/confirm/{id}", confirm_update, methods=["POST"]),
        Route("/api/v1/webhooks/events", event_inbox(state), methods=["POST"]),
    ])


# -- Marketing -----------------------------------------------------------------------------


def marketing_app(state: SystemState) -> SystemLayer:
    utm_keys = ("utm_source", "utm_medium", "utm_campaign")

    async def find_by_utm(request: Request) -> Response:
        given = {k: request.query_params[k].strip().lower() for k in utm_keys if request.query_params.get(k)}
        if not given:
            return invalid({"utm_campaign": ["At least one utm parameter is required."]})
        for campaign in sorted(state.all("campaigns"), key=by_id):
            if all((campaign.get(k) or "").lower() == v for k, v in given.items()):
                return data(campaign)
        return not_found("Campaign")

    async def add_campaign_lead(request: Request) -> Response:
        campaign_id = request.path_params["id"]
        if state.get("campaigns", campaign_id) is None:
            return not_found("Campaign")
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        errors = required(body, "lead_id")
        if errors:
            return invalid(errors)
        row = {**body, "id": None, "campaign_id": state.get("campaigns", campaign_id)["id"], "created_at": now_iso()}
        row.setdefault("status", "lead")
        return data(state.insert("campaign_leads", row), status=201)

    return system_app(state, [
        Route("/api/v1/campaigns/find-by-utm", find_by_utm, methods=["GET"]),
        Route("/api/v1/campaigns/{id}/leads", add_campaign_lead, methods=["POST"]),
        Route("/api/v1/webhooks/events", event_inbox(state), methods=["POST"]),
    ])


# -- systems with only an inbox ------------------------------------------------------------


def inbox_only_app(state: SystemState) -> SystemLayer:
    return system_app(state, [Route("/api/v1/webhooks/events", event_inbox(state), methods=["POST"])])


APP_FACTORIES: dict[str, Callable[[SystemState], SystemLayer]] = {
    "crm": crm_app,
    "operacao": operacao_app,
    "financeiro": financeiro_app,
    "cuidadores": cuidadores_app,
    "atendimento": inbox_only_app,
    "marketing": marketing_app,
    "site": inbox_only_app,
    "documentos": inbox_only_app,
}

#: Where each system's event inbox lives.
INBOX_PATHS: dict[str, str] = {name: "/api/v1/webhooks/events" for name in APP_FACTORIES}
INBOX_PATHS["financeiro"] = "/api/webhooks/events"
