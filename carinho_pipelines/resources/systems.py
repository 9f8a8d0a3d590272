"""One resource per internal system, with exactly the calls of CONTRACTS §4.

Every write takes ``idempotency_key`` (derived by the caller from event id + action,
so a retry never creates a second lead, schedule or invoice). Every system also has
``forward_event``: the canonical event POSTed to its event inbox, signed
Standard-Webhooks style when the system's ``CARINHO_<SYS>_WEBHOOK_SECRET`` is set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field

from carinho_pipelines.kernel import signatures
from carinho_pipelines.kernel.privacy import normalize_phone
from .http import InternalApiResource, Pager

JsonObject = dict[str, Any]
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


# -- canonical events and their signature -------------------------------------------------


def canonical_event(event: Mapping[str, Any]) -> JsonObject:
    """``{"id", "type", "timestamp", "source", "data"}`` from a canonical event or a store row."""
    event_id = event.get("id")
    if event_id is None or event_id == "":
        raise ValueError("an event needs an id to be forwarded")
    event_type = event.get("type") or event.get("event_type")
    if not event_type:
        raise ValueError("an event needs a type to be forwarded")
    timestamp = event.get("timestamp") or event.get("received_at") or datetime.now(SAO_PAULO).isoformat()
    if isinstance(timestamp, datetime):
        timestamp = timestamp.isoformat()
    data = event.get("data", event.get("payload"))
    return {
        "id": str(event_id),
        "type": event_type,
        "timestamp": timestamp,
        "source": event.get("source") or event.get("source_system"),
        "data": data if data is not None else {},
    }


def encode_body(body: Any) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


webhook_secret_key = signatures.secret_key
sign_standard_webhook = signatures.sign


def signature_headers(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhook(secret, msg_id, ts, body),
        # the legacy scheme, for inboxes that only know it (hex HMAC of the body, secret as configured)
        "X-Webhook-Signature": signatures.legacy_signature(secret, body),
    }


# -- the systems ------------------------------------------------------------------------------


class InternalSystemResource(InternalApiResource):
    """An internal system with an event inbox."""

    event_inbox_path: ClassVar[str] = "/api/v1/webhooks/events"

    webhook_secret: str = Field(
        default="",
        description="CARINHO_<SYSTEM>_WEBHOOK_SECRET (whsec_<base64>); when set, forwarded events are signed.",
    )

    def _secrets(self) -> tuple[str, ...]:
        return (self.token, self.webhook_secret)

    def forward_event(self, event: Mapping[str, Any], *, idempotency_key: str | None = None) -> JsonObject:
        """POST the canonical event to this system's event inbox.

        The key defaults to ``<event id>:forward_<system>`` (the catalogue's action name);
        the ``webhook-id`` is the event id, so the receiver dedupes across retries.
        """
        body = canonical_event(event)
        content = encode_body(body)
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers.update(signature_headers(self.webhook_secret, body["id"], content))
        response = self.request(
            "POST",
            self.event_inbox_path,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key or f"{body['id']}:forward_{self.destination}",
        )
        answer = self.json_of(response)
        return answer if isinstance(answer, dict) else {"response": answer}


class CrmResource(InternalSystemResource):
    """CRM: leads, clients, contracts, pending schedules and billing setups."""

    destination: ClassVar[str] = "crm"

    def find_leads_by_phone(self, phone: str) -> list[JsonObject]:
        normalized = normalize_phone(phone) or phone
        return self.get_all("/api/v1/leads", params={"phone": normalized})

    def create_lead(self, lead: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        """``lead``: name, phone, email, source, utm_source, utm_medium, utm_campaign, message."""
        return self.write("POST", "/api/v1/leads", dict(lead), idempotency_key=idempotency_key)

    def update_lead(self, lead_id: str | int, changes: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        return self.write("PUT", f"/api/v1/leads/{lead_id}", dict(changes), idempotency_key=idempotency_key)

    def add_interaction(
        self, lead_id: str | int, interaction: Mapping[str, Any], *, idempotency_key: str
    ) -> JsonObject:
        """``interaction``: channel, direction, content, message_id, received_at."""
        return self.write(
            "POST", f"/api/v1/leads/{lead_id}/interactions", dict(interaction), idempotency_key=idempotency_key
        )

    def create_client(self, client: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        return self.write("POST", "/api/v1/clients", dict(client), idempotency_key=idempotency_key)

    def pending_schedules(self) -> list[JsonObject]:
        return self.get_all("/api/v1/sync/pending-schedules")

    def pending_schedules_pages(self) -> Pager:
        return self.pages("/api/v1/sync/pending-schedules")

    def confirm_schedule(
        self, schedule_id: str | int, operacao_schedule_id: str | int, *, idempotency_key: str
    ) -> JsonObject:
        return self.write(
            "POST",
            f"/api/v1/sync/confirm/{schedule_id}",
            {"operacao_schedule_id": operacao_schedule_id},
            idempotency_key=idempotency_key,
        )

    def pending_billing_setups(self) -> list[JsonObject]:
        return self.get_all("/api/v1/sync/pending-billing-setup")

    def pending_billing_setups_pages(self) -> Pager:
        return self.pages("/api/v1/sync/pending-billing-setup")

    def confirm_billing_setup(
        self, contract_id: str | int, financeiro_id: str | int, *, idempotency_key: str
    ) -> JsonObject:
        return self.write(
            "POST",
            f"/api/v1/contracts/{contract_id}/billing-setup",
            {"financeiro_id": financeiro_id},
            idempotency_key=idempotency_key,
        )


class OperacaoResource(InternalSystemResource):
    """Operação: schedules and completed services."""

    destination: ClassVar[str] = "operacao"

    def create_schedule(self, schedule: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        """``schedule``: client_id, crm_contract_id, service_type, start_date, end_date, preferences."""
        return self.write("POST", "/api/v1/schedules", dict(schedule), idempotency_key=idempotency_key)

    def completed_services(self, day: date | str) -> list[JsonObject]:
        return [item for page in self.completed_services_pages(day) for item in page]

    def completed_services_pages(self, day: date | str) -> Pager:
        value = day.isoformat() if isinstance(day, date) else str(day)
        return self.pages("/api/v1/services/completed", params={"date": value})

    def mark_billed(self, service_id: str | int, invoice_id: str | int, *, idempotency_key: str) -> JsonObject:
        return self.write(
            "PUT", f"/api/v1/services/{service_id}/billed", {"invoice_id": invoice_id}, idempotency_key=idempotency_key
        )


class FinanceiroResource(InternalSystemResource):
    """Financeiro: invoices and paying clients (its inbox has no ``/v1``)."""

    destination: ClassVar[str] = "financeiro"
    event_inbox_path: ClassVar[str] = "/api/webhooks/events"

    def create_invoice(self, invoice: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        """``invoice``: client_id, operacao_service_id, items[{description, hours, unit_price, total}], due_date."""
        return self.write("POST", "/api/invoices", dict(invoice), idempotency_key=idempotency_key)

    def billing_setup(self, setup: Mapping[str, Any], *, idempotency_key: str) -> JsonObject:
        return self.write("POST", "/api/billing/setup", dict(setup), idempotency_key=idempotency_key)


class CuidadoresResource(InternalSystemResource):
    """Cuidadores: caregiver updates to sync into the CRM."""

    destination: ClassVar[str] = "cuidadores"

    def pending_updates(self) -> list[JsonObject]:
        return self.get_all("/api/v1/sync/pending-updates")

    def pending_updates_pages(self) -> Pager:
        return self.pages("/api/v1/sync/pending-updates")

    def confirm_update(self, update_id: str | int, *, idempotency_key: str) -> JsonObject:
        return self.write("POST", f"/api/v1/sync/confirm/{update_id}", {}, idempotency_key=idempotency_key)


class AtendimentoResource(InternalSystemResource):
    """Atendimento: event inbox only (never an endpoint that sends messages)."""

    destination: ClassVar[str] = "atendimento"


class MarketingResource(InternalSystemResource):
    """Marketing: campaigns by UTM and lead attribution."""

    destination: ClassVar[str] = "marketing"

    def find_campaign_by_utm(
        self,
        utm_source: str | None = None,
        utm_medium: str | None = None,
        utm_campaign: str | None = None,
    ) -> JsonObject | None:
        """The campaign, or ``None`` when Marketing answers 404 ("no campaign")."""
        found = self.get_object(
            "/api/v1/campaigns/find-by-utm",
            params={"utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign},
            not_found_ok=True,
        )
        return found or None

    def attribute_lead(
        self, campaign_id: str | int, attribution: Mapping[str, Any], *, idempotency_key: str
    ) -> JsonObject:
        """``attribution``: ``{lead_id, source}``, or ``{lead_id, client_id, status: "converted"}``."""
        return self.write(
            "POST", f"/api/v1/campaigns/{campaign_id}/leads", dict(attribution), idempotency_key=idempotency_key
        )


class SiteResource(InternalSystemResource):
    """Site: event inbox only."""

    destination: ClassVar[str] = "site"


class DocumentosResource(InternalSystemResource):
    """Documentos (LGPD): event inbox only."""

    destination: ClassVar[str] = "documentos"


SYSTEM_RESOURCES: dict[str, type[InternalSystemResource]] = {
    cls.destination: cls
    for cls in (
        CrmResource,
        OperacaoResource,
        FinanceiroResource,
        CuidadoresResource,
        AtendimentoResource,
        MarketingResource,
        SiteResource,
        DocumentosResource,
    )
}
