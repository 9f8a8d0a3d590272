"""E-mail against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest

from carinho_pipelines.events import feedback_links
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.resources import EmailResource

from .conftest import SMTP_PASSWORD, SMTP_USER, free_port


def mailer(port: int, **overrides) -> EmailResource:
    return EmailResource(host="127.0.0.1", port=port, starttls=False, **overrides)


def test_welcome_email_is_multipart_portuguese_from_the_brand(mail):
    sink, port = mail
    result = mailer(port).send_welcome("joana@example.com.br", "Joana Lima", idempotency_key="evt-5:email_welcome")

    [msg] = sink.messages()
    assert msg["Subject"] == "Bem-vindo(a) ao Carinho com Você!"
    assert str(msg["From"]) == "Carinho com Você <naoresponda@carinho.com.vc>"
    assert msg["To"] == "joana@example.com.br"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Olá, Joana Lima!" in text and "Seja muito bem-vindo(a) ao Carinho com Você!" in text
    assert "<p>Olá, Joana Lima!</p>" in html and 'lang="pt-BR"' in html
    assert result["recipients"] == ["j***@example.com.br"]
    # the same action retried carries the same Message-ID
    assert result["message_id"] == mailer(port).build_message(
        "joana@example.com.br", "x", "y", idempotency_key="evt-5:email_welcome")["Message-ID"]


def test_feedback_email_carries_the_signed_link(mail, monkeypatch):
    monkeypatch.setenv("CARINHO_FEEDBACK_SECRET", "test-feedback-secret")
    monkeypatch.setenv("CARINHO_FEEDBACK_URL", "https://carinho.com.vc/avaliar")
    sink, port = mail
    link = feedback_links.make_link(service_id=90, client_id=1, caregiver_id=300)

    mailer(port).send_feedback_request("joana@example.com.br", link, nome="Joana", cuidador="Ana Paula")

    [msg] = sink.messages()
    assert msg["Subject"] == "Como foi seu atendimento? - Carinho com Você"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Esperamos que o atendimento com Ana Paula tenha sido excelente!" in text
    assert f"Avaliar Atendimento: {link}" in text
    assert f'href="{link}"' in html and ">Avaliar Atendimento</a>" in html
    token = link.split("?token=", 1)[1]
    claims = feedback_links.verify_token(token)
    assert (claims.service_id, claims.client_id, claims.caregiver_id) == ("90", "1", "300")


def test_send_alert_is_plain_text(mail):
    sink, port = mail
    mailer(port).send_alert(["operacao@carinho.com.vc", "dev@carinho.com.vc"], "[Carinho] DLQ acima de 10",
                            "Há 12 execuções com falha na DLQ.")
    [msg] = sink.messages()
    assert msg.get_content_type() == "text/plain"
    assert "Há 12 execuções com falha na DLQ." in msg.get_content()
    assert sink.envelopes[0].rcpt_tos == ["operacao@carinho.com.vc", "dev@carinho.com.vc"]


def test_login_with_credentials(mail):
    sink, port = mail
    mailer(port, user=SMTP_USER, password=SMTP_PASSWORD).send_alert("dev@carinho.com.vc", "teste", "ok")
    assert len(sink.messages()) == 1
    with pytest.raises(ActionError) as caught:
        mailer(port, user=SMTP_USER, password="wrong").send_alert("dev@carinho.com.vc", "teste", "ok")
    assert (caught.value.error_class, caught.value.status) == ("rejected", 535)


def test_a_refused_recipient_is_rejected_and_a_full_mailbox_is_unavailable(mail):
    _, port = mail
    with pytest.raises(ActionError) as refused:
        mailer(port).send_alert("inexistente@example.com.br", "teste", "ok")
    assert (refused.value.error_class, refused.value.status) == ("rejected", 550)
    assert "inexistente@example.com.br" not in str(refused.value)

    with pytest.raises(ActionError) as full:
        mailer(port).send_alert("lotado@example.com.br", "teste", "ok")
    assert (full.value.error_class, full.value.status) == ("unavailable", 452)


def test_connection_refused_is_unavailable():
    with pytest.raises(ActionError) as caught:
        mailer(free_port()).send_alert("dev@carinho.com.vc", "teste", "ok")
    assert caught.value.error_class == "unavailable" and caught.value.retryable


def test_a_recipient_without_address_is_invalid(mail):
    with pytest.raises(ActionError) as caught:
        mailer(mail[1]).send("", "assunto", "texto")
    assert caught.value.error_class == "invalid"
