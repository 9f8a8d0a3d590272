"""The Z-API client against the sandbox's Z-API simulator; no secret in any log line."""

from __future__ import annotations

import logging

import pytest

from carinho_pipelines.kernel import templates
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.kernel.log_redaction import install_log_redaction, redact
from carinho_pipelines.resources import ZApiResource

INSTANCE = "SANDBOXINSTANCE0000000000000001"
INSTANCE_TOKEN = "SANDBOXTOKEN000000000001"
CLIENT_TOKEN = "sandbox-client-token"


def zapi_calls(sb):
    return sb.calls("zapi")


def test_send_text_normalises_the_phone_and_sends_the_client_token(sb, zapi):
    answer = zapi.send_text("(11) 98888-7777", templates.lead_response("Joana"))

    assert set(answer) == {"zaapId", "messageId", "id"} and answer["messageId"] == answer["id"]
    [sent] = sb.zapi.sent()
    assert sent["kind"] == "text" and sent["phone"] == "5511988887777"
    assert sent["message"] == templates.lead_response("Joana")
    assert sent["messageId"] == answer["messageId"]
    call = zapi_calls(sb)[-1]
    assert call["path"] == f"/instances/{INSTANCE}/token/{INSTANCE_TOKEN}/send-text"
    assert call["headers"]["client-token"] == CLIENT_TOKEN
    assert call["json"] == {"phone": "5511988887777", "message": templates.lead_response("Joana")}


def test_send_button_list_with_the_rating_buttons(sb, zapi):
    zapi.send_button_list("5511988887777", templates.feedback_request("Ana"), templates.rating_buttons())
    [sent] = sb.zapi.sent()
    assert sent["kind"] == "button-list"
    assert sent["body"]["buttonList"] == {"buttons": [
        {"id": "rating_1", "label": "⭐ 1 - Ruim"},
        {"id": "rating_2", "label": "⭐⭐ 2 - Regular"},
        {"id": "rating_3", "label": "⭐⭐⭐ 3 - Bom"},
        {"id": "rating_4", "label": "⭐⭐⭐⭐ 4 - Muito Bom"},
        {"id": "rating_5", "label": "⭐⭐⭐⭐⭐ 5 - Excelente"},
    ]}


def test_send_link_ends_the_message_with_the_link(sb, zapi):
    url = "https://carinho.com.vc/feedback?token=abc.def"
    zapi.send_link("11988887777", "Avalie seu atendimento", url, "Avaliar Atendimento", "Leva menos de 1 minuto",
                   image="https://carinho.com.vc/images/logo.png")
    [sent] = sb.zapi.sent()
    assert sent["kind"] == "link"
    assert sent["message"] == f"Avalie seu atendimento\n{url}"
    assert sent["link"] == {"linkUrl": url, "title": "Avaliar Atendimento",
                            "linkDescription": "Leva menos de 1 minuto",
                            "image": "https://carinho.com.vc/images/logo.png"}


def test_a_2xx_with_an_error_key_is_a_rejection(sb, zapi):
    sb.fail("zapi", status=200, count=1)  # the simulator answers 200 {"error": "..."}
    with pytest.raises(ActionError) as caught:
        zapi.send_text("5511988887777", "Olá")
    assert (caught.value.error_class, caught.value.status) == ("rejected", 200)
    assert sb.zapi.sent() == []


def test_a_wrong_client_token_is_rejected(sb, zapi):
    wrong = zapi.model_copy(update={"client_token": "not-ours"})
    with pytest.raises(ActionError) as caught:
        wrong.send_text("5511988887777", "Olá")
    assert (caught.value.error_class, caught.value.status) == ("rejected", 403)


def test_an_unusable_phone_is_invalid_without_a_call(sb, zapi):
    with pytest.raises(ActionError) as caught:
        zapi.send_text("abc", "Olá")
    assert caught.value.error_class == "invalid"
    assert zapi_calls(sb) == []


def test_status_connected_and_disconnected(sb, zapi):
    assert zapi.status() == {"connected": True, "smartphoneConnected": True, "error": None}
    sb.zapi.disconnect()
    try:
        assert zapi.status() == {"connected": False, "smartphoneConnected": False, "error": "You are not connected."}
    finally:
        sb.zapi.connect()


def test_status_raises_unavailable_when_z_api_is_unreachable(sb, zapi):
    sb.down("zapi")
    try:
        with pytest.raises(ActionError) as caught:
            zapi.status()
    finally:
        sb.up("zapi")
    assert caught.value.error_class == "unavailable" and caught.value.retryable
    assert INSTANCE_TOKEN not in str(caught.value)


def test_a_503_from_z_api_is_unavailable(sb, zapi):
    sb.fail("zapi", status=503, count=1, retry_after=3)
    with pytest.raises(ActionError) as caught:
        zapi.send_text("5511988887777", "Olá")
    assert (caught.value.error_class, caught.value.retry_after) == ("unavailable", 3.0)
    assert INSTANCE_TOKEN not in str(caught.value)


def test_no_token_reaches_the_logs(sb, zapi, system, caplog):
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    crm = system("crm")

    zapi.send_text("5511988887777", "Olá")
    zapi.status()
    crm.find_leads_by_phone("5511988887777")
    sb.fail("zapi", status=500, count=1)
    with pytest.raises(ActionError):
        zapi.send_text("5511988887777", "Olá")

    text = caplog.text
    assert "HTTP Request" in text  # httpx did log the requests…
    assert "/token/***/send-text" in text  # …with the instance token replaced
    for secret in (INSTANCE_TOKEN, CLIENT_TOKEN, "sandbox-crm-token"):
        assert secret not in text
    assert "5511988887777" not in text  # the ?phone= lookup is masked
    assert "55119****7777" in text


def test_redact_covers_query_tokens_bearer_and_phones():
    line = ('GET https://x/instances/ABC/token/SECRET123/status?token=hook-secret&phone=5511988887777 '
            'Authorization: Bearer abc.def')
    cleaned = redact(line)
    assert "SECRET123" not in cleaned and "hook-secret" not in cleaned and "abc.def" not in cleaned
    assert "/token/***/status" in cleaned and "token=***" in cleaned and "phone=55119****7777" in cleaned


def test_a_resource_without_instance_is_a_configuration_error():
    with pytest.raises(ActionError) as caught:
        ZApiResource(base_url="http://127.0.0.1:9").send_text("5511988887777", "Olá")
    assert caught.value.error_class == "error"
