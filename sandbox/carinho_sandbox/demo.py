"""A realistic day played against a running hub's relay (CONTRACTS §2 inbound routes).

A site lead from a Google Ads campaign, a WhatsApp conversation, a client registered in
the CRM, a service completed, the client's rating by button and the payment. Each step
is an HTTP request the real systems would make; the demo reports what the relay answered
and, at the end, what the hub did in the simulated systems.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from carinho_pipelines.kernel.privacy import mask_phone, normalize_phone
from carinho_sandbox.control import ControlClient
from carinho_sandbox.seed import CAMPAIGN_UTM, EXISTING_LEAD_PHONE
from carinho_sandbox.server import Sandbox
from carinho_sandbox.systems import sign_standard_webhook

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

SITE_LEAD_PHONE = "(11) 98765-4321"
WHATSAPP_LEAD_PHONE = "5511976543210"
CLIENT_PHONE = "5511987654321"  # the site lead, who becomes a client


@dataclass
class Step:
    name: str
    request: str
    status: int | None = None
    answer: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Zapi:
    """The phone side of WhatsApp, through a Sandbox object or a control URL."""

    def __init__(self, sandbox: Sandbox | str) -> None:
        self.sandbox = sandbox if isinstance(sandbox, Sandbox) else None
        self.control = ControlClient(sandbox) if isinstance(sandbox, str) else None

    def env(self) -> dict[str, str]:
        return self.sandbox.env() if self.sandbox else self.control.env()  # type: ignore[union-attr]

    def point_at(self, webhook_url: str, auto_callbacks: float | None) -> None:
        if self.sandbox:
            self.sandbox.zapi.set_webhook(webhook_url)
            self.sandbox.zapi.set_auto_callbacks(auto_callbacks)
        else:
            self.control.zapi_webhook(webhook_url, auto_callbacks)  # type: ignore[union-attr]

    def receive(self, phone: str, text: str | None = None, button_id: str | None = None,
                sender_name: str | None = None) -> tuple[int, Any, str]:
        if self.sandbox:
            mid = self.sandbox.zapi.emit_received(phone, text=text, button_id=button_id,
                                                  sender_name=sender_name or "Cliente Sandbox", check=False)
            last = self.sandbox.zapi.callbacks()[-1]
            return last["status"], _json_or_text(last.get("response")), mid
        out = self.control.emit_received(phone, text, button_id, sender_name)  # type: ignore[union-attr]
        return out["webhook_status"], _json_or_text(out.get("webhook_response")), out["payload"]["messageId"]

    def summary(self) -> dict[str, int]:
        if self.sandbox:
            counts = {name: len(self.sandbox.calls(name)) for name in self.sandbox.systems}
            counts["zapi messages sent"] = len(self.sandbox.zapi.sent())
            return counts
        systems = self.control.systems()  # type: ignore[union-attr]
        counts = {name: info["calls"] for name, info in systems.items()}
        counts["zapi messages sent"] = len(self.control.zapi_sent())  # type: ignore[union-attr]
        return counts

    def close(self) -> None:
        if self.control:
            self.control.close()


def _json_or_text(text: str | None) -> Any:
    if not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text[:200]


class RoundTimeout(Exception):
    """The hub did not finish this round's events in time."""


#: event states after which nothing more happens to an event (``scheduled``: stored as
#: due later, e.g. the feedback request two hours after a service)
DONE_STATES = frozenset({"succeeded", "failed", "filtered", "scheduled", "archived"})
#: a round is over when its events are done and no new one appeared for this long (the
#: simulated phone sends delivery callbacks about a second after each message)
QUIET_SECONDS = 3.0


@dataclass
class Round:
    """What the hub did with one play of the day, read from its operations API."""

    events: list[dict[str, Any]]
    #: queue → received → last action done, in seconds, of the events that ran
    latencies: dict[str, list[float]]
    calls: dict[str, int]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["status"] == "failed"]

    def over_sla(self) -> list[str]:
        from carinho_pipelines.kernel.queues import QUEUES

        return [q for q, values in self.latencies.items() if percentile(values, 95) > QUEUES[q].sla_seconds]


class _Hub:
    """The operations API of the hub under test (needs ``events:read``)."""

    def __init__(self, hub_url: str, api_key: str) -> None:
        self.http = httpx.Client(base_url=hub_url, timeout=10, headers={"X-API-Key": api_key})

    def newest_id(self) -> int:
        resp = self.http.get("/api/events", params={"per_page": 1})
        resp.raise_for_status()
        data = resp.json()["data"]
        return data[0]["id"] if data else 0

    def events_after(self, event_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            resp = self.http.get("/api/events", params={"per_page": 200, "page": page})
            resp.raise_for_status()
            batch = [e for e in resp.json()["data"] if e["id"] > event_id]
            out += batch
            if len(batch) < 200:
                return out
            page += 1

    def detail(self, event_id: int) -> dict[str, Any]:
        resp = self.http.get(f"/api/events/{event_id}")
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        self.http.close()


def wait_for_round(hub: _Hub, after_id: int, timeout: float) -> list[dict[str, Any]]:
    """Every event the round caused (its webhooks, the events the hub derived from them,
    the phone's delivery callbacks), once all are done; :class:`RoundTimeout` if not
    within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    quiet_since = time.monotonic()
    while True:
        events = hub.events_after(after_id)
        ids = {e["id"] for e in events}
        if ids != seen:
            seen, quiet_since = ids, time.monotonic()
        pending = [e for e in events if e["status"] not in DONE_STATES]
        if events and not pending and time.monotonic() - quiet_since >= QUIET_SECONDS:
            return events
        if time.monotonic() > deadline:
            states = ", ".join(f"{e['id']} {e['event_type']} {e['status']}" for e in pending)
            raise RoundTimeout(f"not done after {timeout:g}s: {states or 'no event arrived'}")
        time.sleep(0.5)


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def measure_round(hub: _Hub, events: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per queue, received → last action recorded, for the events that ran."""
    latencies: dict[str, list[float]] = {}
    for event in events:
        if event["status"] not in ("succeeded", "failed"):
            continue
        actions = hub.detail(event["id"])["actions"]
        if actions:
            done = max(a["updated_at"] for a in actions)
            latencies.setdefault(event["queue"], []).append(_seconds(event["received_at"], done))
    return latencies


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report_round(result: Round, echo: Callable[[str], None]) -> None:
    from carinho_pipelines.kernel.queues import QUEUES

    states: dict[str, int] = {}
    for event in result.events:
        states[event["status"]] = states.get(event["status"], 0) + 1
    echo(f"Eventos desta rodada: {len(result.events)} ("
         + ", ".join(f"{n} {state}" for state, n in sorted(states.items())) + ")")
    echo("Chamadas recebidas pelos sistemas simulados nesta rodada:")
    for name, count in result.calls.items():
        echo(f"  {name:22} {count}")
    echo("Recebido → concluído, por fila (segundos):")
    echo(f"  {'fila':20} {'eventos':>7} {'p50':>6} {'p95':>6} {'SLA':>5}")
    for name, values in sorted(result.latencies.items(), key=lambda kv: -QUEUES[kv[0]].priority):
        sla = QUEUES[name].sla_seconds
        p95 = percentile(values, 95)
        verdict = "ok" if p95 <= sla else "ACIMA DO SLA"
        echo(f"  {name:20} {len(values):>7} {percentile(values, 50):>6.2f} {p95:>6.2f} {sla:>5}  {verdict}")


def play_day(
    hub_url: str,
    env: dict[str, str] | None = None,
    sandbox: Sandbox | str = "http://127.0.0.1:8109",
    echo: Callable[[str], None] = print,
    wait: float = 0.0,
    auto_callbacks: float | None = 1.0,
    api_key: str | None = None,
) -> tuple[list[Step], Round | None]:
    """Play the day against ``hub_url``; ``sandbox`` is a :class:`Sandbox` or its control URL.

    ``env`` holds the hub's credentials (default: the sandbox's own ``env()``). With an
    operations ``api_key`` (``events:read``), the demo then waits up to ``wait`` seconds
    for the hub to finish every event of the round (:class:`RoundTimeout` otherwise)
    and returns what it did; without one it reports the steps only.
    """
    hub_url = hub_url.rstrip("/")
    zapi = _Zapi(sandbox)
    env = env or zapi.env()
    run = uuid.uuid4().hex[:8]
    now = datetime.now(SAO_PAULO)
    steps: list[Step] = []
    http = httpx.Client(timeout=10)
    hub = _Hub(hub_url, api_key) if api_key else None
    after_id = hub.newest_id() if hub else 0
    calls_before = zapi.summary() if hub else {}

    def post(name: str, path: str, system: str, body: dict[str, Any]) -> Step:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {env.get(f'CARINHO_{system.upper()}_TOKEN', '')}"}
        secret = env.get(f"CARINHO_{system.upper()}_WEBHOOK_SECRET")
        if secret:
            headers.update(sign_standard_webhook(secret, f"demo-{run}-{name}", raw))
        step = Step(name, f"POST {path}")
        try:
            response = http.post(hub_url + path, content=raw, headers=headers)
            step.status, step.answer = response.status_code, _json_or_text(response.text)
        except httpx.HTTPError as exc:
            step.error = f"{type(exc).__name__}: {exc}"
        return report(step)

    def whatsapp(name: str, phone: str, text: str | None = None, button_id: str | None = None,
                 sender_name: str | None = None) -> Step:
        step = Step(name, "Z-API ReceivedCallback → POST /webhooks/whatsapp")
        try:
            step.status, step.answer, step.extra["messageId"] = zapi.receive(phone, text, button_id, sender_name)
        except Exception as exc:  # noqa: BLE001 - the demo reports every step, whatever happens
            step.error = f"{type(exc).__name__}: {exc}"
        return report(step)

    def report(step: Step) -> Step:
        steps.append(step)
        outcome = f"{step.status} {json.dumps(step.answer, ensure_ascii=False)[:160]}" if step.error is None else step.error
        echo(f"{'✓' if step.ok else '✗'} {step.name}: {step.request} → {outcome}")
        return step

    echo(f"Um dia no Carinho com Você (hub {hub_url}, rodada {run})")
    zapi.point_at(f"{hub_url}/webhooks/whatsapp", auto_callbacks)

    echo(f"— 08:12 um lead chega pelo site ({mask_phone(normalize_phone(SITE_LEAD_PHONE))}), campanha Google Ads")
    post("lead do site", "/webhooks/site/lead", "site", {
        "name": "Cláudia Ferreira", "phone": SITE_LEAD_PHONE, "email": f"claudia.{run}@example.com.br",
        "message": "Procuro cuidadora para minha mãe, 82 anos, período diurno.",
        **CAMPAIGN_UTM, "page_url": "https://carinho.com.vc/cuidador-de-idosos?utm_source=google",
        "form_id": f"contato-home-{run}",
    })

    echo(f"— 09:30 conversa no WhatsApp com um contato novo ({mask_phone(WHATSAPP_LEAD_PHONE)})")
    whatsapp("mensagem de um contato novo", WHATSAPP_LEAD_PHONE,
             "Olá! Vocês têm acompanhante hospitalar para o fim de semana?", sender_name="Roberto")
    whatsapp("segunda mensagem do contato", WHATSAPP_LEAD_PHONE, "É para o meu pai, internado no Sírio-Libanês.",
             sender_name="Roberto")
    echo(f"— 10:05 um lead já conhecido escreve ({mask_phone(EXISTING_LEAD_PHONE)})")
    whatsapp("mensagem de um lead existente", EXISTING_LEAD_PHONE, "Bom dia! Conseguiram ver a proposta?",
             sender_name="Maria Aparecida")

    echo("— 11:40 a Cláudia fecha contrato: o CRM registra a cliente")
    post("cliente registrado", "/webhooks/crm/client-registered", "crm", {
        "id": 101, "name": "Cláudia Ferreira", "email": f"claudia.{run}@example.com.br", "phone": CLIENT_PHONE,
        "lead_id": 1, "estimated_value": 4800.0, "service_type": "cuidador_idoso", **CAMPAIGN_UTM,
    })

    echo("— 16:00 a Operação conclui o atendimento do dia")
    post("serviço concluído", "/webhooks/operacao/service-completed", "operacao", {
        "id": 9003, "client_id": 101, "client_name": "Cláudia Ferreira", "client_phone": CLIENT_PHONE,
        "client_email": f"claudia.{run}@example.com.br", "caregiver_id": 301, "caregiver_name": "Joana Santos",
        "caregiver_phone": "5511976540301", "completed_at": now.replace(hour=16, minute=0, second=0, microsecond=0).isoformat(),
        "duration_hours": 8, "service_type": "cuidador_idoso", "is_recurring": True,
    })

    echo("— 18:10 a cliente avalia o atendimento com 5 estrelas (botão rating_5)")
    whatsapp("avaliação pelo botão", CLIENT_PHONE, button_id="rating_5", sender_name="Cláudia")

    echo("— 19:25 o Financeiro confirma o pagamento")
    post("pagamento recebido", "/webhooks/financeiro/payment", "financeiro", {
        "id": f"pay-{run}", "invoice_id": 1, "client_id": 101, "status": "paid", "amount": 240.0,
        "payment_method": "pix", "paid_at": (now + timedelta(minutes=1)).isoformat(),
    })

    ok = sum(s.ok for s in steps)
    echo(f"{ok}/{len(steps)} passos aceitos pelo hub")
    result = None
    try:
        if hub is not None and ok:
            echo(f"… aguardando o hub concluir esta rodada (até {wait:g}s)")
            events = wait_for_round(hub, after_id, wait)
            calls = {name: count - calls_before.get(name, 0) for name, count in zapi.summary().items()}
            result = Round(events, measure_round(hub, events), calls)
            report_round(result, echo)
    finally:
        http.close()
        zapi.close()
        if hub is not None:
            hub.close()
    return steps, result
