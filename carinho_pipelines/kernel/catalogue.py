"""The event catalogue (CONTRACTS §3): event type → origins → queue → actions, and
the fields of each event's payload (CONTRACTS §2.2).

One declarative table. The relay validates event types, origins and payloads against
it (:func:`payload_schema` is the JSON Schema the relay enforces and ``/openapi.json``
publishes), the Dagster event jobs are built from it (one job per event type, one op
per action, ``depends_on`` as graph edges), and the docs and tests read it. Adding an
event type is one entry here plus, if it needs a new kind of call, one action
implementation.

Pure Python: imported by the relay, which must not import dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carinho_pipelines.kernel.queues import DEFAULT, HIGH, NOTIFICATIONS

#: JSON Schema types of a field; ids from other systems may be numbers or strings
ID = ("string", "integer")


@dataclass(frozen=True)
class Field:
    """One field of an event's payload, as JSON Schema sees it."""

    name: str
    #: a JSON Schema type, or several (``ID``)
    type: str | tuple[str, ...]
    description: str = ""
    #: ``email``, ``phone`` (normalised to 55 + DDD + number) or ``date-time`` (ISO-8601)
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None

    def schema(self, *, required: bool) -> dict[str, Any]:
        types = [self.type] if isinstance(self.type, str) else list(self.type)
        string = "string" in types
        if not required:  # an optional field may be sent as null
            types.append("null")
        out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        if self.description:
            out["description"] = self.description
        if self.format:
            out["format"] = self.format
        if string and required:
            out["minLength"] = 1
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.enum is not None:
            out["enum"] = [*self.enum, *([] if required else [None])]
        return out


# fields several event types share
def _id(what: str) -> Field:
    return Field("id", ID, what)


NAME = Field("name", "string", "the person's name")
PHONE = Field("phone", ("string", "integer"), "phone; normalised to 55 + DDD + number", format="phone")
EMAIL = Field("email", "string", "e-mail address", format="email")
CPF = Field("cpf", "string", "CPF (personal data: masked wherever shown)")
CLIENT_ID = Field("client_id", ID, "the client in the CRM")
CAREGIVER_ID = Field("caregiver_id", ID, "the caregiver in Cuidadores")
SERVICE_ID = Field("service_id", ID, "the service (visit) in Operação")
SERVICE_TYPE = Field("service_type", "string", "kind of care, e.g. cuidador_idoso")
AMOUNT = Field("amount", "number", "amount in BRL", minimum=0)
UTM = tuple(Field(f"utm_{k}", "string", f"campaign UTM {k}") for k in ("source", "medium", "campaign"))


def _at(name: str, what: str) -> Field:
    return Field(name, "string", what, format="date-time")


@dataclass(frozen=True)
class Action:
    #: op name inside the event's job, unique per event type
    name: str
    #: system called: a key of ``settings.SYSTEMS``, ``"whatsapp"``, ``"email"`` or ``"hub"``
    destination: str
    #: what the action does, for docs and the UI
    description: str
    #: names of actions of the same event whose output this one needs
    depends_on: tuple[str, ...] = ()


def forward(system: str) -> Action:
    """POST the canonical event to ``system``'s event inbox."""
    return Action(f"forward_{system}", system, f"forward the event to {system}'s event inbox")


@dataclass(frozen=True)
class EventType:
    name: str
    origins: tuple[str, ...]
    queue: str
    actions: tuple[Action, ...]
    description: str = ""
    #: fields of the payload at least one of which must be present
    required_any: tuple[str, ...] = ()
    #: fields of the payload that must all be present
    required: tuple[str, ...] = field(default_factory=tuple)
    #: the payload's known fields (others are accepted and kept as sent)
    fields: tuple[Field, ...] = ()
    #: a realistic payload, for the API reference (a test validates it)
    example: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        declared = {f.name for f in self.fields}
        undeclared = [n for n in (*self.required, *self.required_any) if n not in declared]
        if undeclared:
            raise ValueError(f"{self.name}: required fields {undeclared} are not among its fields")

    @property
    def job_name(self) -> str:
        return "event_" + self.name.replace(".", "_")


def payload_schema(spec: EventType) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses it) of ``spec``'s payload.

    A required field must be present, not null and (for strings) not empty;
    ``required_any`` is an ``anyOf`` of such requirements. The relay validates
    payloads with exactly this schema (``relay.validation``)."""
    schema: dict[str, Any] = {
        "type": "object",
        "title": spec.name,
        "description": (spec.description or f"Payload of {spec.name}.") + " Other fields are kept as sent.",
        "properties": {f.name: f.schema(required=f.name in spec.required) for f in spec.fields},
    }
    if spec.required:
        schema["required"] = list(spec.required)
    if spec.required_any:
        by_name = {f.name: f for f in spec.fields}
        schema["anyOf"] = [
            {"required": [name], "properties": {name: by_name[name].schema(required=True)}} for name in spec.required_any
        ]
    if spec.example:
        schema["examples"] = [spec.example]
    return schema


_EVENTS: tuple[EventType, ...] = (
    EventType(
        "lead.created",
        origins=("site", "whatsapp", "marketing"),
        queue=HIGH,
        description="A new contact: register/refresh the CRM lead, auto-reply, attribute the campaign.",
        required_any=("phone", "email"),
        fields=(
            NAME, PHONE, EMAIL,
            Field("message", "string", "what the person wrote"),
            *UTM,
            Field("page_url", "string", "the page the form was sent from"),
            Field("form_id", "string", "the site form"),
        ),
        example={
            "name": "Cláudia Ferreira", "phone": "+55 (11) 98765-4321", "email": "claudia@example.com.br",
            "message": "Procuro cuidadora para minha mãe, 82 anos, período diurno.",
            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidador-idosos-sp",
            "page_url": "https://carinho.com.vc/cuidador-de-idosos", "form_id": "contato-home",
        },
        actions=(
            Action("crm_upsert_lead", "crm", "find the lead by phone; update it or create it"),
            Action("whatsapp_lead_response", "whatsapp", "auto-reply lead_response (once per phone per 24 h)"),
            Action(
                "marketing_attribute_lead",
                "marketing",
                "find the campaign by UTM and attribute the lead to it",
                depends_on=("crm_upsert_lead",),
            ),
        ),
    ),
    EventType(
        "lead.updated",
        ("crm",),
        DEFAULT,
        (forward("crm"),),
        description="A lead changed in the CRM.",
        fields=(_id("the lead in the CRM"), NAME, PHONE, EMAIL, Field("status", "string", "the lead's stage"),
                _at("updated_at", "when it changed")),
        example={"id": 5821, "name": "Roberto Almeida", "phone": "5511976543210", "status": "qualified",
                 "updated_at": "2026-03-02T10:15:00-03:00"},
    ),
    EventType(
        "client.registered",
        origins=("crm",),
        queue=DEFAULT,
        description="A lead became a paying client.",
        required=("id", "name"),
        fields=(
            _id("the client in the CRM"), NAME, EMAIL, PHONE, CPF,
            Field("lead_id", ID, "the lead it came from"),
            Field("estimated_value", "number", "expected monthly value in BRL", minimum=0),
            SERVICE_TYPE, *UTM,
            Field("campaign_id", ID, "the campaign in Marketing, when known"),
        ),
        example={
            "id": 101, "name": "Cláudia Ferreira", "email": "claudia@example.com.br", "phone": "5511987654321",
            "cpf": "123.456.789-09", "lead_id": 5820, "estimated_value": 4800.0, "service_type": "cuidador_idoso",
            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidador-idosos-sp",
        },
        actions=(
            Action("whatsapp_welcome", "whatsapp", "WhatsApp welcome message"),
            Action("email_welcome", "email", "welcome e-mail"),
            Action("financeiro_billing_setup", "financeiro", "register the paying client in Financeiro"),
            Action("marketing_conversion", "marketing", "record the conversion on the lead's campaign"),
            forward("crm"),
        ),
    ),
    EventType(
        "client.updated",
        ("crm",),
        DEFAULT,
        (forward("crm"), forward("operacao")),
        description="A client's data changed in the CRM.",
        fields=(_id("the client in the CRM"), NAME, EMAIL, PHONE, _at("updated_at", "when it changed")),
        example={"id": 101, "name": "Cláudia Ferreira Lima", "phone": "5511987654321",
                 "updated_at": "2026-03-05T09:00:00-03:00"},
    ),
    EventType(
        "service.scheduled",
        ("crm",),
        DEFAULT,
        (
            Action("operacao_create_schedule", "operacao", "create the schedule in Operação"),
            forward("crm"),
            forward("cuidadores"),
            forward("financeiro"),
        ),
        description="A contract's visits were scheduled in the CRM.",
        fields=(
            _id("the schedule request in the CRM"), CLIENT_ID, Field("contract_id", ID, "the contract in the CRM"),
            SERVICE_TYPE, Field("start_date", "string", "first day (YYYY-MM-DD)"),
            Field("end_date", "string", "last day (YYYY-MM-DD)"),
            Field("preferences", "object", "shifts, days of the week, caregiver preferences"),
        ),
        example={"id": 77, "client_id": 101, "contract_id": 3001, "service_type": "cuidador_idoso",
                 "start_date": "2026-03-09", "end_date": "2026-06-09",
                 "preferences": {"shift": "diurno", "weekdays": ["mon", "wed", "fri"]}},
    ),
    EventType(
        "service.started",
        ("operacao",),
        DEFAULT,
        (forward("crm"), forward("operacao")),
        description="A caregiver checked in for a visit.",
        fields=(_id("the service in Operação"), CLIENT_ID, CAREGIVER_ID, _at("started_at", "check-in time")),
        example={"id": 9003, "client_id": 101, "caregiver_id": 301, "started_at": "2026-03-09T08:02:00-03:00"},
    ),
    EventType(
        "service.completed",
        origins=("operacao",),
        queue=DEFAULT,
        description="A visit ended: notify the client, ask for feedback later, tell the others.",
        required=("id", "client_id"),
        fields=(
            _id("the service in Operação"), CLIENT_ID,
            Field("client_name", "string", "the client's name"),
            Field("client_phone", ("string", "integer"), "the client's phone", format="phone"),
            Field("client_email", "string", "the client's e-mail", format="email"),
            CAREGIVER_ID,
            Field("caregiver_name", "string", "the caregiver's name"),
            Field("caregiver_phone", ("string", "integer"), "the caregiver's phone", format="phone"),
            _at("completed_at", "check-out time"),
            Field("duration_hours", "number", "hours of care", minimum=0),
            SERVICE_TYPE,
            Field("is_recurring", "boolean", "part of a recurring contract"),
        ),
        example={
            "id": 9003, "client_id": 101, "client_name": "Cláudia Ferreira", "client_phone": "5511987654321",
            "client_email": "claudia@example.com.br", "caregiver_id": 301, "caregiver_name": "Joana Santos",
            "caregiver_phone": "5511976540301", "completed_at": "2026-03-09T16:00:00-03:00", "duration_hours": 8,
            "service_type": "cuidador_idoso", "is_recurring": True,
        },
        actions=(
            Action("whatsapp_service_completed", "whatsapp", "WhatsApp service_completed to the client"),
            Action(
                "schedule_feedback_request",
                "hub",
                "store a feedback.requested event due 2 h later, inside business hours",
            ),
            forward("crm"),
            forward("financeiro"),
            forward("cuidadores"),
        ),
    ),
    EventType(
        "feedback.requested",
        origins=("hub",),
        queue=NOTIFICATIONS,
        description="Ask the client to rate the visit (WhatsApp buttons and e-mail link).",
        fields=(
            SERVICE_ID, CLIENT_ID,
            Field("client_name", "string", "the client's name"),
            Field("client_phone", ("string", "integer"), "the client's phone", format="phone"),
            Field("client_email", "string", "the client's e-mail", format="email"),
            CAREGIVER_ID,
            Field("caregiver_name", "string", "the caregiver's name"),
            Field("requested_by_event", "integer", "the service.completed event that asked for it"),
        ),
        example={"service_id": 9003, "client_id": 101, "client_name": "Cláudia Ferreira",
                 "client_phone": "5511987654321", "client_email": "claudia@example.com.br", "caregiver_id": 301,
                 "caregiver_name": "Joana Santos", "requested_by_event": 42},
        actions=(
            Action("whatsapp_feedback_request", "whatsapp", "send-button-list with rating_1…rating_5"),
            Action("email_feedback_request", "email", "e-mail with a signed feedback link (7 days)"),
        ),
    ),
    EventType(
        "service.cancelled",
        ("operacao",),
        DEFAULT,
        (forward("crm"), forward("operacao"), forward("financeiro")),
        description="A visit was cancelled: tell the CRM, Operação and Financeiro (billing adjusts).",
        fields=(_id("the service in Operação"), CLIENT_ID, CAREGIVER_ID, Field("reason", "string", "why"),
                _at("cancelled_at", "when")),
        example={"id": 9010, "client_id": 101, "caregiver_id": 301, "reason": "cliente internado",
                 "cancelled_at": "2026-03-10T07:40:00-03:00"},
    ),
    EventType(
        "payment.received",
        ("financeiro",),
        DEFAULT,
        (forward("crm"), forward("operacao")),
        description="Financeiro received a payment.",
        required=("id",),
        fields=(_id("the payment in Financeiro"), Field("invoice_id", ID, "the invoice paid"), CLIENT_ID, AMOUNT,
                Field("payment_method", "string", "pix, boleto, cartao…"),
                Field("status", "string", "received or paid"), _at("paid_at", "when it was paid")),
        example={"id": "pay-2026-0311", "invoice_id": 1, "client_id": 101, "status": "paid", "amount": 240.0,
                 "payment_method": "pix", "paid_at": "2026-03-11T19:25:00-03:00"},
    ),
    EventType(
        "payment.failed",
        ("financeiro",),
        DEFAULT,
        (forward("crm"),),
        description="A payment failed in Financeiro.",
        required=("id",),
        fields=(_id("the payment in Financeiro"), Field("invoice_id", ID, "the invoice"), CLIENT_ID, AMOUNT,
                Field("payment_method", "string", "pix, boleto, cartao…"), Field("status", "string", "failed"),
                Field("failure_reason", "string", "what the payment provider said")),
        example={"id": "pay-2026-0312", "invoice_id": 2, "client_id": 101, "status": "failed", "amount": 240.0,
                 "payment_method": "cartao", "failure_reason": "cartão recusado"},
    ),
    EventType(
        "invoice.created",
        ("financeiro",),
        DEFAULT,
        (forward("crm"),),
        description="Financeiro issued an invoice.",
        fields=(_id("the invoice in Financeiro"), CLIENT_ID, Field("operacao_service_id", ID, "the service billed"),
                AMOUNT, Field("due_date", "string", "YYYY-MM-DD")),
        example={"id": 1, "client_id": 101, "operacao_service_id": 9003, "amount": 240.0, "due_date": "2026-03-12"},
    ),
    EventType(
        "payout.processed",
        ("financeiro",),
        NOTIFICATIONS,
        (
            forward("cuidadores"),
            Action("whatsapp_payout_processed", "whatsapp", "payout_processed to the caregiver"),
        ),
        description="A caregiver's payout was processed: tell Cuidadores and the caregiver.",
        required=("id",),
        fields=(_id("the payout in Financeiro"), CAREGIVER_ID, Field("caregiver_name", "string", "the caregiver's name"),
                Field("caregiver_phone", ("string", "integer"), "the caregiver's phone", format="phone"), AMOUNT,
                Field("period", "string", "the period paid, e.g. 2026-02"), _at("processed_at", "when")),
        example={"id": "po-2026-02-301", "caregiver_id": 301, "caregiver_name": "Joana Santos",
                 "caregiver_phone": "5511976540301", "amount": 3520.0, "period": "2026-02",
                 "processed_at": "2026-03-05T12:00:00-03:00"},
    ),
    EventType(
        "caregiver.assigned",
        ("operacao",),
        DEFAULT,
        (forward("crm"), forward("cuidadores")),
        description="Operação assigned a caregiver to a service.",
        fields=(SERVICE_ID, CAREGIVER_ID, Field("caregiver_name", "string", "the caregiver's name"), CLIENT_ID,
                _at("assigned_at", "when")),
        example={"service_id": 9003, "caregiver_id": 301, "caregiver_name": "Joana Santos", "client_id": 101,
                 "assigned_at": "2026-03-06T14:30:00-03:00"},
    ),
    EventType(
        "whatsapp.inbound",
        origins=("whatsapp",),
        queue=HIGH,
        description="A WhatsApp message from a person: record it on the lead (or create one), hand it to Atendimento.",
        required=("message_id",),
        fields=(
            Field("message_id", "string", "Z-API messageId"), PHONE, Field("name", "string", "sender name"),
            Field("message", "string", "the text (or caption)"), Field("kind", "string", "text, image, audio…"),
            Field("media_url", "string", "the media's URL, for media messages"),
            Field("reference_message_id", "string", "the message replied to"),
            _at("received_at", "when Z-API received it"), Field("zapi", "object", "the Z-API callback as received"),
        ),
        example={"message_id": "3EB0C431C26A1916E0A6", "phone": "5511976543210", "name": "Roberto",
                 "message": "Olá! Vocês têm acompanhante hospitalar para o fim de semana?", "kind": "text",
                 "received_at": "2026-03-02T09:30:00-03:00"},
        actions=(
            Action("crm_record_interaction", "crm", "add the message to the lead, or emit lead.created"),
            forward("atendimento"),
        ),
    ),
    EventType(
        "whatsapp.status",
        ("whatsapp",),
        NOTIFICATIONS,
        (forward("atendimento"),),
        description="Delivery status of messages the hub sent (SENT < RECEIVED < READ < PLAYED).",
        required=("status", "ids"),
        fields=(Field("status", "string", "SENT, RECEIVED, READ, PLAYED or FAILED"),
                Field("ids", "array", "the message ids"), PHONE, Field("is_group", "boolean", "a group chat"),
                Field("zapi", "object", "the Z-API callback as received")),
        example={"status": "READ", "ids": ["3EB0C431C26A1916E0A7"], "phone": "5511987654321", "is_group": False},
    ),
    EventType(
        "feedback.received",
        origins=("operacao", "whatsapp", "cuidadores"),
        queue=DEFAULT,
        description="A rating: tell CRM and Cuidadores; thank the client when it came by WhatsApp.",
        required=("rating",),
        fields=(
            Field("rating", "number", "1 to 5", minimum=1, maximum=5), Field("comment", "string", "free text"),
            SERVICE_ID, CLIENT_ID, CAREGIVER_ID, Field("channel", "string", "whatsapp, email, app…"), PHONE,
        ),
        example={"rating": 5, "comment": "A Joana foi maravilhosa com minha mãe.", "service_id": 9003,
                 "client_id": 101, "caregiver_id": 301, "channel": "email"},
        actions=(
            forward("crm"),
            forward("cuidadores"),
            Action("whatsapp_thank_you", "whatsapp", "thank-you message (rating ≥ 4 / < 4)"),
        ),
    ),
)

CATALOGUE: dict[str, EventType] = {e.name: e for e in _EVENTS}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
#: event type → the JSON Schema of its payload (what the relay enforces and publishes)
PAYLOAD_SCHEMAS: dict[str, dict[str, Any]] = {name: payload_schema(spec) for name, spec in CATALOGUE.items()}


def queue_for(event_type: str) -> str:
    return CATALOGUE[event_type].queue


def may_post(source: str, event_type: str) -> bool:
    spec = CATALOGUE.get(event_type)
    return spec is not None and source in spec.origins
