"""The event catalogue (CONTRACTS §3): event type → origins → queue → actions.

One declarative table. The relay validates event types and origins against it, the
Dagster event jobs are built from it (one job per event type, one op per action,
``depends_on`` as graph edges), and the docs and tests read it. Adding an event type
is one entry here plus, if it needs a new kind of call, one action implementation.

Pure Python: imported by the relay, which must not import dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .queues import DEFAULT, HIGH, NOTIFICATIONS


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

    @property
    def job_name(self) -> str:
        return "event_" + self.name.replace(".", "_")


_EVENTS: tuple[EventType, ...] = (
    EventType(
        "lead.created",
        origins=("site", "whatsapp", "marketing"),
        queue=HIGH,
        description="A new contact: register/refresh the CRM lead, auto-reply, attribute the campaign.",
        required_any=("phone", "email"),
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
    EventType("lead.updated", ("crm",), DEFAULT, (forward("crm"),)),
    EventType(
        "client.registered",
        origins=("crm",),
        queue=DEFAULT,
        description="A lead became a paying client.",
        required=("id", "name"),
        actions=(
            Action("whatsapp_welcome", "whatsapp", "WhatsApp welcome message"),
            Action("email_welcome", "email", "welcome e-mail"),
            Action("financeiro_billing_setup", "financeiro", "register the paying client in Financeiro"),
            Action("marketing_conversion", "marketing", "record the conversion on the lead's campaign"),
            forward("crm"),
        ),
    ),
    EventType("client.updated", ("crm",), DEFAULT, (forward("crm"), forward("operacao"))),
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
    ),
    EventType("service.started", ("operacao",), DEFAULT, (forward("crm"), forward("operacao"))),
    EventType(
        "service.completed",
        origins=("operacao",),
        queue=DEFAULT,
        description="A visit ended: notify the client, ask for feedback later, tell the others.",
        required=("id", "client_id"),
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
    ),
    EventType("payment.received", ("financeiro",), DEFAULT, (forward("crm"), forward("operacao"))),
    EventType("payment.failed", ("financeiro",), DEFAULT, (forward("crm"),)),
    EventType("invoice.created", ("financeiro",), DEFAULT, (forward("crm"),)),
    EventType(
        "payout.processed",
        ("financeiro",),
        NOTIFICATIONS,
        (
            forward("cuidadores"),
            Action("whatsapp_payout_processed", "whatsapp", "payout_processed to the caregiver"),
        ),
    ),
    EventType("caregiver.assigned", ("operacao",), DEFAULT, (forward("crm"), forward("cuidadores"))),
    EventType(
        "whatsapp.inbound",
        origins=("whatsapp",),
        queue=HIGH,
        description="A WhatsApp message from a person: record it on the lead (or create one), hand it to Atendimento.",
        actions=(
            Action("crm_record_interaction", "crm", "add the message to the lead, or emit lead.created"),
            forward("atendimento"),
        ),
    ),
    EventType("whatsapp.status", ("whatsapp",), NOTIFICATIONS, (forward("atendimento"),)),
    EventType(
        "feedback.received",
        origins=("operacao", "whatsapp", "cuidadores"),
        queue=DEFAULT,
        description="A rating: tell CRM and Cuidadores; thank the client when it came by WhatsApp.",
        actions=(
            forward("crm"),
            forward("cuidadores"),
            Action("whatsapp_thank_you", "whatsapp", "thank-you message (rating ≥ 4 / < 4)"),
        ),
    ),
)

CATALOGUE: dict[str, EventType] = {e.name: e for e in _EVENTS}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)


def queue_for(event_type: str) -> str:
    return CATALOGUE[event_type].queue


def may_post(source: str, event_type: str) -> bool:
    spec = CATALOGUE.get(event_type)
    return spec is not None and source in spec.origins
