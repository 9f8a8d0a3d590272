"""What each action of the catalogue does. One function per action name; the ops
in :mod:`jobs` wrap them with the ledger, retries and error classification.

An action returns its outcome: ``{"status": "succeeded" | "skipped" | "held", ...}``
(ids only, never personal data: outcomes are shown in the UI and the API).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from carinho_pipelines.kernel import catalogue, templates
from carinho_pipelines.destinations import limits
from carinho_pipelines.events import feedback_links
from carinho_pipelines.kernel.business_hours import feedback_due
from carinho_pipelines.kernel.catalogue import Action
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.kernel.privacy import normalize_phone
from carinho_pipelines.kernel.settings import HUB_SOURCE, WHATSAPP_SOURCE
from carinho_pipelines.store import Envelope, EventStore, as_utc, utcnow

from . import ledger, whatsapp_outbox

AUTO_REPLY_WINDOW = dt.timedelta(hours=24)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")


@dataclass
class ActionContext:
    event: dict[str, Any]
    action: Action
    resources: Mapping[str, Any]
    store: EventStore
    run_id: str
    log: logging.Logger | Any = field(default_factory=lambda: logging.getLogger(__name__))

    @property
    def payload(self) -> dict[str, Any]:
        return self.event.get("payload") or {}

    @property
    def event_id(self) -> int:
        return int(self.event["id"])

    def key(self, suffix: str = "") -> str:
        """The downstream ``Idempotency-Key``: stable across retries and re-executions."""
        return f"carinho:{self.event_id}:{self.action.name}{suffix}"

    def result_of(self, action_name: str) -> dict[str, Any]:
        record = ledger.get_action(self.store, self.event_id, action_name)
        if record is None or record.status not in ledger.DONE:
            raise ActionError("error", f"{action_name} has not completed", destination=self.action.destination)
        return record.result or {}


def skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def _phone(value: Any) -> str | None:
    return normalize_phone(str(value)) if value not in (None, "") else None


def _whatsapp(ctx: ActionContext, phone: str | None, kind: str, body: dict[str, Any], *, guard: bool = False) -> dict[str, Any]:
    if not phone:
        return skipped("no phone")
    row = whatsapp_outbox.outbox_enqueue(
        ctx.store,
        event_id=ctx.event_id,
        action=ctx.action.name,
        phone=phone,
        kind=kind,
        body=body,
        guard=(phone, AUTO_REPLY_WINDOW) if guard else None,
    )
    if row is None:
        return skipped("auto-reply already sent to this phone in the last 24 h")
    if row["status"] == "failed":
        # Z-API refused it and a person re-executed the run (after fixing the cause):
        # try again, with the phone as the event has it now
        whatsapp_outbox.outbox_finish(ctx.store, row["id"], "pending")
        row = {**row, "status": "pending"}
    return whatsapp_outbox.deliver(ctx.store, ctx.resources["zapi"], row, limits.pace_ahead(ctx.event.get("queue")))


# -- forwards --------------------------------------------------------------------------


def _forward_data(ctx: ActionContext) -> dict[str, Any]:
    data = dict(ctx.payload)
    if ctx.event["event_type"] == "feedback.received":
        data.update(_feedback_attribution(ctx))
    return data


def forward(ctx: ActionContext) -> dict[str, Any]:
    system = ctx.action.destination
    event = {
        "id": ctx.event_id,
        "type": ctx.event["event_type"],
        "timestamp": as_utc(ctx.event["occurred_at"]).isoformat(),
        "source": ctx.event["source"],
        "data": _forward_data(ctx),
    }
    ctx.resources[system].forward_event(event, idempotency_key=ctx.key())
    return {"status": "succeeded", "forwarded_to": system}


# -- lead.created ----------------------------------------------------------------------


def crm_upsert_lead(ctx: ActionContext) -> dict[str, Any]:
    p, crm = ctx.payload, ctx.resources["crm"]
    phone = _phone(p.get("phone"))
    existing = crm.find_leads_by_phone(phone) if phone else []
    if existing:
        lead = existing[0]
        crm.update_lead(
            lead["id"],
            {"last_contact_at": utcnow().isoformat(), "interaction_count": int(lead.get("interaction_count") or 0) + 1},
            idempotency_key=ctx.key(":update"),
        )
        return {"status": "succeeded", "lead_id": lead["id"], "created": False}
    lead = {
        "name": p.get("name") or "Cliente",
        "phone": phone,
        "email": p.get("email"),
        "source": p.get("source") or ctx.event["source"],
        "message": p.get("message"),
        **{k: p.get(k) for k in UTM_FIELDS},
    }
    created = crm.create_lead(lead, idempotency_key=ctx.key(":create"))
    return {"status": "succeeded", "lead_id": created.get("id"), "created": True}


def whatsapp_lead_response(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    message = templates.lead_response(nome=p.get("name"))
    return _whatsapp(ctx, _phone(p.get("phone")), "text", {"message": message}, guard=True)


def marketing_attribute_lead(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    utm = {k: p.get(k) for k in UTM_FIELDS if p.get(k)}
    if not utm:
        return skipped("no utm")
    campaign = ctx.resources["marketing"].find_campaign_by_utm(**utm)
    if not campaign:
        return skipped("no campaign for these utm")
    lead_id = ctx.result_of("crm_upsert_lead").get("lead_id")
    ctx.resources["marketing"].attribute_lead(
        campaign["id"], {"lead_id": lead_id, "source": p.get("source") or ctx.event["source"]}, idempotency_key=ctx.key()
    )
    return {"status": "succeeded", "campaign_id": campaign["id"], "lead_id": lead_id}


# -- client.registered -----------------------------------------------------------------


def whatsapp_welcome(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    return _whatsapp(ctx, _phone(p.get("phone")), "text", {"message": templates.welcome(nome=p.get("name"))})


def email_welcome(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    if not p.get("email"):
        return skipped("no e-mail")
    ctx.resources["email"].send_welcome(p["email"], nome=p.get("name"), idempotency_key=ctx.key())
    return {"status": "succeeded"}


def financeiro_billing_setup(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    setup = {"crm_client_id": p["id"], "name": p.get("name"), "email": p.get("email"), "phone": p.get("phone"), "cpf": p.get("cpf")}
    created = ctx.resources["financeiro"].billing_setup(setup, idempotency_key=ctx.key())
    return {"status": "succeeded", "financeiro_id": created.get("id")}


def marketing_conversion(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    if not p.get("lead_id"):
        return skipped("no lead_id")
    campaign_id = p.get("campaign_id")
    if not campaign_id:
        utm = {k: p.get(k) for k in UTM_FIELDS if p.get(k)}
        if not utm:
            return skipped("campaign unknown")
        campaign = ctx.resources["marketing"].find_campaign_by_utm(**utm)
        if not campaign:
            return skipped("no campaign for these utm")
        campaign_id = campaign["id"]
    ctx.resources["marketing"].attribute_lead(
        campaign_id, {"lead_id": p["lead_id"], "client_id": p["id"], "status": "converted"}, idempotency_key=ctx.key()
    )
    return {"status": "succeeded", "campaign_id": campaign_id}


# -- service.* -------------------------------------------------------------------------


def operacao_create_schedule(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    schedule = {
        "client_id": p.get("client_id"),
        "crm_contract_id": p.get("contract_id") or p.get("crm_contract_id"),
        "service_type": p.get("service_type"),
        "start_date": p.get("start_date"),
        "end_date": p.get("end_date"),
        "preferences": p.get("preferences") or {},
    }
    created = ctx.resources["operacao"].create_schedule(schedule, idempotency_key=ctx.key())
    return {"status": "succeeded", "schedule_id": created.get("id")}


def whatsapp_service_completed(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    message = templates.service_completed(nome=p.get("client_name"))
    return _whatsapp(ctx, _phone(p.get("client_phone")), "text", {"message": message})


FEEDBACK_FIELDS = ("client_id", "client_name", "client_phone", "client_email", "caregiver_id", "caregiver_name")


def schedule_feedback_request(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    completed = as_utc(_parse(p.get("completed_at"))) or as_utc(ctx.event["occurred_at"])
    due = feedback_due(completed)
    env = Envelope(
        event_type="feedback.requested",
        source=HUB_SOURCE,
        idempotency_key=f"service.completed:{ctx.event['source']}:{p['id']}",
        queue=catalogue.queue_for("feedback.requested"),
        payload={"service_id": p["id"], **{k: p.get(k) for k in FEEDBACK_FIELDS}, "requested_by_event": ctx.event_id},
        occurred_at=utcnow(),
        available_at=due,
    )
    stored = ledger.emit_event(ctx.store, env)
    return {"status": "succeeded", "feedback_event_id": stored.event_id, "due_at": due.isoformat()}


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


# -- feedback ------------------------------------------------------------------------


def whatsapp_feedback_request(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    body = {"message": templates.feedback_request(cuidador=p.get("caregiver_name")), "buttons": templates.rating_buttons()}
    return _whatsapp(ctx, _phone(p.get("client_phone")), "button_list", body)


def email_feedback_request(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    if not p.get("client_email"):
        return skipped("no e-mail")
    try:
        link = feedback_links.make_link(p.get("service_id"), p.get("client_id"), p.get("caregiver_id"))
    except RuntimeError as exc:  # CARINHO_FEEDBACK_SECRET missing: configuration, not a transient fault
        raise ActionError("error", str(exc), destination="email") from exc
    ctx.resources["email"].send_feedback_request(
        p["client_email"], link, nome=p.get("client_name"), cuidador=p.get("caregiver_name"), idempotency_key=ctx.key()
    )
    return {"status": "succeeded"}


def _feedback_attribution(ctx: ActionContext) -> dict[str, Any]:
    """A WhatsApp rating names no service: find it through the button message it answers."""
    ref = ctx.payload.get("reference_message_id")
    if ctx.event["source"] != WHATSAPP_SOURCE or not ref:
        return {}
    sent = whatsapp_outbox.outbox_by_message_id(ctx.store, ref)
    if sent is None:
        return {}
    request = ctx.store.get_event(sent["event_id"]) or {}
    rp = request.get("payload") or {}
    return {k: rp.get(k) for k in ("service_id", "client_id", "caregiver_id") if rp.get(k) is not None}


def whatsapp_thank_you(ctx: ActionContext) -> dict[str, Any]:
    if ctx.event["source"] != WHATSAPP_SOURCE:
        return skipped("not received by WhatsApp")
    p = ctx.payload
    return _whatsapp(ctx, _phone(p.get("phone")), "text", {"message": templates.thank_you(p.get("rating"))})


# -- payouts ---------------------------------------------------------------------------


def whatsapp_payout_processed(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.payload
    message = templates.payout_processed(
        nome=p.get("caregiver_name"), amount=p.get("amount"), period_start=p.get("period_start"), period_end=p.get("period_end")
    )
    return _whatsapp(ctx, _phone(p.get("caregiver_phone") or p.get("phone")), "text", {"message": message})


# -- whatsapp.inbound ------------------------------------------------------------------


def crm_record_interaction(ctx: ActionContext) -> dict[str, Any]:
    p, crm = ctx.payload, ctx.resources["crm"]
    phone = _phone(p.get("phone"))
    leads = crm.find_leads_by_phone(phone) if phone else []
    content = p.get("message") or (f"[{p.get('kind')}]" if p.get("kind") else "")
    if leads:
        crm.add_interaction(
            leads[0]["id"],
            {"channel": "whatsapp", "direction": "inbound", "content": content,
             "message_id": p.get("message_id"), "received_at": p.get("received_at")},
            idempotency_key=ctx.key(),
        )
        return {"status": "succeeded", "lead_id": leads[0]["id"]}
    env = Envelope(
        event_type="lead.created",
        source=WHATSAPP_SOURCE,
        idempotency_key=f"whatsapp.inbound:{p.get('message_id')}",
        queue=catalogue.queue_for("lead.created"),
        payload={"name": p.get("name"), "phone": phone, "message": p.get("message"), "source": WHATSAPP_SOURCE},
        occurred_at=as_utc(ctx.event["occurred_at"]),
    )
    stored = ledger.emit_event(ctx.store, env)
    return {"status": "succeeded", "lead_event_id": stored.event_id}


ACTIONS: dict[str, Callable[[ActionContext], dict[str, Any]]] = {
    "crm_upsert_lead": crm_upsert_lead,
    "whatsapp_lead_response": whatsapp_lead_response,
    "marketing_attribute_lead": marketing_attribute_lead,
    "whatsapp_welcome": whatsapp_welcome,
    "email_welcome": email_welcome,
    "financeiro_billing_setup": financeiro_billing_setup,
    "marketing_conversion": marketing_conversion,
    "operacao_create_schedule": operacao_create_schedule,
    "whatsapp_service_completed": whatsapp_service_completed,
    "schedule_feedback_request": schedule_feedback_request,
    "whatsapp_feedback_request": whatsapp_feedback_request,
    "email_feedback_request": email_feedback_request,
    "whatsapp_thank_you": whatsapp_thank_you,
    "whatsapp_payout_processed": whatsapp_payout_processed,
    "crm_record_interaction": crm_record_interaction,
}


def implementation(action: Action) -> Callable[[ActionContext], dict[str, Any]]:
    if action.name.startswith("forward_"):
        return forward
    return ACTIONS[action.name]
