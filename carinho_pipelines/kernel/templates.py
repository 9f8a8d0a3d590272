"""Every text a client or caregiver reads (CONTRACTS §8), in pt-BR.

Placeholders are substituted in one pass (a name with braces cannot break a message)
and fall back to a safe default when the name is unknown. E-mail HTML
escapes every substituted value.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

BRAND = "Carinho com Você"
DEFAULT_NAME = "Cliente"
DEFAULT_CAREGIVER_NAME = "Cuidador(a)"
#: used when the caregiver of a service is unknown: "Avalie o atendimento de nosso(a) cuidador(a)…"
DEFAULT_CAREGIVER = "nosso(a) cuidador(a)"

# -- WhatsApp -----------------------------------------------------------------------------

LEAD_RESPONSE = (
    "Olá, {nome}! Recebemos seu contato e em breve um de nossos atendentes irá retornar. "
    "Obrigado por confiar no Carinho com Você!"
)
WELCOME = (
    "Olá, {nome}! Bem-vindo(a) ao Carinho com Você. "
    "Estamos aqui para ajudar você a encontrar o cuidador ideal."
)
SERVICE_COMPLETED = (
    "Olá, {nome}! O atendimento de hoje foi finalizado. Gostaríamos de saber como foi sua experiência."
)
FEEDBACK_REQUEST = (
    "Sua opinião é muito importante para nós! Avalie o atendimento de {cuidador} em uma escala de 1 a 5."
)
THANK_YOU_HIGH = (
    "Muito obrigado pela avaliação! 😊 Ficamos felizes em saber que você está satisfeito com nosso serviço."
)
THANK_YOU_LOW = (
    "Agradecemos seu feedback. Vamos trabalhar para melhorar nosso atendimento. "
    "Se precisar de algo, estamos à disposição."
)
PAYOUT_PROCESSED = "Olá, {nome}! Seu repasse foi processado."

WHATSAPP_TEMPLATES: dict[str, str] = {
    "lead_response": LEAD_RESPONSE,
    "welcome": WELCOME,
    "service_completed": SERVICE_COMPLETED,
    "feedback_request": FEEDBACK_REQUEST,
    "thank_you_high": THANK_YOU_HIGH,
    "thank_you_low": THANK_YOU_LOW,
    "payout_processed": PAYOUT_PROCESSED,
}

#: the feedback buttons; a reply's ``buttonId`` names the rating
RATING_BUTTONS: tuple[tuple[str, str], ...] = (
    ("rating_1", "⭐ 1 - Ruim"),
    ("rating_2", "⭐⭐ 2 - Regular"),
    ("rating_3", "⭐⭐⭐ 3 - Bom"),
    ("rating_4", "⭐⭐⭐⭐ 4 - Muito Bom"),
    ("rating_5", "⭐⭐⭐⭐⭐ 5 - Excelente"),
)


_PLACEHOLDER = re.compile(r"\{(nome|cuidador)\}")


def _clean(value: Any, default: str) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or default


def render(template: str, *, nome: Any = None, cuidador: Any = None) -> str:
    """A WhatsApp template (a key of :data:`WHATSAPP_TEMPLATES` or the text itself)."""
    text = WHATSAPP_TEMPLATES.get(template, template)
    values = {"nome": _clean(nome, DEFAULT_NAME), "cuidador": _clean(cuidador, DEFAULT_CAREGIVER)}
    # one pass, so a substituted name is never itself substituted
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def lead_response(nome: Any = None) -> str:
    return render(LEAD_RESPONSE, nome=nome)


def welcome(nome: Any = None) -> str:
    return render(WELCOME, nome=nome)


def service_completed(nome: Any = None) -> str:
    return render(SERVICE_COMPLETED, nome=nome)


def feedback_request(cuidador: Any = None) -> str:
    return render(FEEDBACK_REQUEST, cuidador=cuidador)


def rating_buttons() -> list[dict[str, str]]:
    """``buttonList.buttons`` for Z-API's send-button-list."""
    return [{"id": button_id, "label": label} for button_id, label in RATING_BUTTONS]


def rating_from_button(button_id: str | None) -> int | None:
    """``"rating_4"`` → 4; anything else → ``None``."""
    ids = {button_id: n for n, (button_id, _) in enumerate(RATING_BUTTONS, start=1)}
    return ids.get((button_id or "").strip())


def thank_you(rating: int | str) -> str:
    """The thank-you for a feedback answer: rating ≥ 4 and < 4 differ."""
    return THANK_YOU_HIGH if int(rating) >= 4 else THANK_YOU_LOW


def format_brl(amount: Any) -> str:
    """``1234.56`` → ``R$ 1.234,56``."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {amount!r}") from exc
    sign = "-" if value < 0 else ""
    whole, cents = f"{abs(value):,.2f}".split(".")
    return f"{sign}R$ {whole.replace(',', '.')},{cents}"


def format_date_br(value: Any) -> str:
    """``2025-06-01`` (or a date/datetime) → ``01/06/2025``; anything else as given."""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%d/%m/%Y")
    except ValueError:
        return text


def payout_processed(
    nome: Any = None,
    amount: Any = None,
    period_start: Any = None,
    period_end: Any = None,
    *,
    period: str | None = None,
) -> str:
    """``payout_processed`` with the amount (pt-BR) and the period appended."""
    parts = [render(PAYOUT_PROCESSED, nome=_clean(nome, DEFAULT_CAREGIVER_NAME))]
    if amount is not None and amount != "":
        parts.append(f"Valor: {format_brl(amount)}.")
    if period:
        parts.append(f"Período: {period}.")
    elif period_start and period_end:
        parts.append(f"Período: {format_date_br(period_start)} a {format_date_br(period_end)}.")
    elif period_start or period_end:
        parts.append(f"Período: {format_date_br(period_start or period_end)}.")
    return " ".join(parts)


# -- e-mail -----------------------------------------------------------------------------------

WELCOME_EMAIL_SUBJECT = "Bem-vindo(a) ao Carinho com Você!"
FEEDBACK_EMAIL_SUBJECT = "Como foi seu atendimento? - Carinho com Você"
FEEDBACK_BUTTON = "Avaliar Atendimento"
AUTOMATIC_NOTICE = "Este é um e-mail automático. Por favor, não responda diretamente."
SIGN_OFF = ("Com carinho,", "Equipe Carinho com Você")
WELCOME_EXPECTATIONS = (
    "Cuidadores qualificados e avaliados",
    "Contratação rápida e sem complicação",
    "Atendimento digital com suporte humano",
    "Substituição fácil quando necessário",
)

_PRIMARY = "#5BBFAD"
_TEXT = "#1a2b32"
_MUTED = "#616E7C"
_BACKGROUND = "#F4F7F9"


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def _html_page(title: str, body: str) -> str:
    year = datetime.now().year
    return f"""<!DOCTYPE html>
<html lang="pt-BR">
<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body style="margin:0;padding:0;background:{_BACKGROUND};font-family:Arial,Helvetica,sans-serif;color:{_TEXT};">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:{_BACKGROUND};">
<tr><td align="center" style="padding:24px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border-radius:8px;">
<tr><td style="background:{_PRIMARY};color:#ffffff;padding:20px 32px;font-size:22px;font-weight:bold;border-radius:8px 8px 0 0;">{BRAND}</td></tr>
<tr><td style="padding:32px;font-size:16px;line-height:1.5;">
{body}
<p>{SIGN_OFF[0]}<br>{SIGN_OFF[1]}</p>
</td></tr>
<tr><td style="padding:16px 32px;font-size:12px;color:{_MUTED};border-top:1px solid #E4E7EB;">
&copy; {year} {BRAND}<br>{AUTOMATIC_NOTICE}
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


def welcome_email(nome: Any = None) -> EmailContent:
    name = _clean(nome, DEFAULT_NAME)
    text = "\n".join(
        [
            f"Olá, {name}!",
            "",
            "Seja muito bem-vindo(a) ao Carinho com Você!",
            "",
            "Nosso compromisso é tornar o cuidado domiciliar simples, humano e confiável.",
            "",
            "O que você pode esperar:",
            *[f"- {item}" for item in WELCOME_EXPECTATIONS],
            "",
            *SIGN_OFF,
            "",
            "--",
            AUTOMATIC_NOTICE,
        ]
    )
    items = "".join(f"<li>{html.escape(item)}</li>" for item in WELCOME_EXPECTATIONS)
    body = (
        f"<p>Olá, {html.escape(name)}!</p>"
        "<p><strong>Seja muito bem-vindo(a) ao Carinho com Você!</strong></p>"
        "<p>Nosso compromisso é tornar o cuidado domiciliar simples, humano e confiável.</p>"
        f'<div style="background:{_BACKGROUND};border-radius:6px;padding:16px 24px;margin:16px 0;">'
        f"<p style=\"margin:0 0 8px 0;font-weight:bold;\">O que você pode esperar</p><ul>{items}</ul></div>"
    )
    return EmailContent(WELCOME_EMAIL_SUBJECT, text, _html_page(WELCOME_EMAIL_SUBJECT, body))


def feedback_email(link: str, nome: Any = None, cuidador: Any = None) -> EmailContent:
    """The feedback request with an "Avaliar Atendimento" link (signed, valid 7 days)."""
    name = _clean(nome, DEFAULT_NAME)
    caregiver = _clean(cuidador, DEFAULT_CAREGIVER)
    text = "\n".join(
        [
            f"Olá, {name}!",
            "",
            f"Esperamos que o atendimento com {caregiver} tenha sido excelente!",
            "",
            "Sua opinião é muito importante para nós. Conte como foi:",
            "",
            f"{FEEDBACK_BUTTON}: {link}",
            "",
            "A avaliação leva menos de 1 minuto e faz toda a diferença!",
            "O link é válido por 7 dias.",
            "",
            *SIGN_OFF,
            "",
            "--",
            AUTOMATIC_NOTICE,
        ]
    )
    body = (
        f"<p>Olá, {html.escape(name)}!</p>"
        f"<p>Esperamos que o atendimento com {html.escape(caregiver)} tenha sido excelente!</p>"
        "<p>Sua opinião é muito importante para nós. Conte como foi:</p>"
        '<p style="text-align:center;margin:28px 0;">'
        f'<a href="{html.escape(link, quote=True)}" style="background:{_PRIMARY};color:#ffffff;'
        'text-decoration:none;padding:14px 28px;border-radius:6px;font-weight:bold;display:inline-block;">'
        f"{FEEDBACK_BUTTON}</a></p>"
        "<p>A avaliação leva menos de 1 minuto e faz toda a diferença!</p>"
        f'<p style="font-size:13px;color:{_MUTED};">O link é válido por 7 dias.</p>'
    )
    return EmailContent(FEEDBACK_EMAIL_SUBJECT, text, _html_page(FEEDBACK_EMAIL_SUBJECT, body))
