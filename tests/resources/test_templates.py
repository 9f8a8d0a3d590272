"""The user-facing texts are exactly CONTRACTS §8."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from carinho_pipelines.kernel import templates


def test_whatsapp_texts_are_exactly_the_contract():
    assert templates.lead_response("Joana") == (
        "Olá, Joana! Recebemos seu contato e em breve um de nossos atendentes irá retornar. "
        "Obrigado por confiar no Carinho com Você!")
    assert templates.welcome("Joana") == (
        "Olá, Joana! Bem-vindo(a) ao Carinho com Você. Estamos aqui para ajudar você a encontrar o cuidador ideal.")
    assert templates.service_completed("Joana") == (
        "Olá, Joana! O atendimento de hoje foi finalizado. Gostaríamos de saber como foi sua experiência.")
    assert templates.feedback_request("Ana Paula") == (
        "Sua opinião é muito importante para nós! Avalie o atendimento de Ana Paula em uma escala de 1 a 5.")
    assert templates.render("lead_response", nome="Joana") == templates.lead_response("Joana")


def test_thank_you_depends_on_the_rating():
    high = "Muito obrigado pela avaliação! 😊 Ficamos felizes em saber que você está satisfeito com nosso serviço."
    low = ("Agradecemos seu feedback. Vamos trabalhar para melhorar nosso atendimento. "
           "Se precisar de algo, estamos à disposição.")
    assert [templates.thank_you(r) for r in (5, 4, "4", 3, 1)] == [high, high, high, low, low]


def test_rating_buttons():
    assert templates.rating_buttons() == [
        {"id": "rating_1", "label": "⭐ 1 - Ruim"},
        {"id": "rating_2", "label": "⭐⭐ 2 - Regular"},
        {"id": "rating_3", "label": "⭐⭐⭐ 3 - Bom"},
        {"id": "rating_4", "label": "⭐⭐⭐⭐ 4 - Muito Bom"},
        {"id": "rating_5", "label": "⭐⭐⭐⭐⭐ 5 - Excelente"},
    ]
    assert templates.rating_from_button("rating_4") == 4
    assert templates.rating_from_button("confirm") is None


@pytest.mark.parametrize("value", [None, "", "   "])
def test_placeholders_have_safe_defaults(value):
    assert templates.lead_response(value).startswith("Olá, Cliente! Recebemos")
    assert "Avalie o atendimento de nosso(a) cuidador(a) em uma escala" in templates.feedback_request(value)


def test_a_name_with_braces_cannot_break_a_template():
    assert templates.welcome("{cuidador} Silva").startswith("Olá, {cuidador} Silva! Bem-vindo(a)")


def test_payout_appends_the_amount_in_brazilian_format_and_the_period():
    assert templates.payout_processed("Ana", 1234.56, "2025-06-01", date(2025, 6, 15)) == (
        "Olá, Ana! Seu repasse foi processado. Valor: R$ 1.234,56. Período: 01/06/2025 a 15/06/2025.")
    assert templates.payout_processed("Ana", "980") == "Olá, Ana! Seu repasse foi processado. Valor: R$ 980,00."
    assert templates.payout_processed(None, None) == "Olá, Cuidador(a)! Seu repasse foi processado."


@pytest.mark.parametrize("amount, shown", [
    (0, "R$ 0,00"), (5.5, "R$ 5,50"), (1234.565, "R$ 1.234,57"), (Decimal("1234567.8"), "R$ 1.234.567,80"),
    ("-10", "-R$ 10,00"),
])
def test_format_brl(amount, shown):
    assert templates.format_brl(amount) == shown


def test_emails_have_subject_text_and_html():
    welcome = templates.welcome_email("Joana")
    assert welcome.subject == "Bem-vindo(a) ao Carinho com Você!"
    assert "Olá, Joana!" in welcome.text and "<html" in welcome.html
    feedback = templates.feedback_email("https://carinho.com.vc/feedback?token=a.b", "Joana", "Ana")
    assert feedback.subject == "Como foi seu atendimento? - Carinho com Você"
    assert "Avaliar Atendimento: https://carinho.com.vc/feedback?token=a.b" in feedback.text
    assert '<a href="https://carinho.com.vc/feedback?token=a.b"' in feedback.html


def test_email_html_escapes_names():
    html = templates.welcome_email("<script>alert(1)</script>").html
    assert "<script>" not in html and "&lt;script&gt;" in html
