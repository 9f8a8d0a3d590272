"""No secret in any log line (CONTRACTS §10 "Logs")."""

import logging

from tests.conftest import TOKENS, ZAPI_WEBHOOK_TOKEN


def test_access_log_and_relay_logs_never_show_tokens_or_phones(relay, caplog):
    caplog.set_level(logging.INFO)
    relay.post(f"/webhooks/whatsapp?token={ZAPI_WEBHOOK_TOKEN}", json={"type": "ReceivedCallback"})
    relay.post("/webhooks/site/lead", "site", json={"name": "Ana", "phone": "5511988887777"})
    relay.post("/webhooks/site/lead", json={"phone": "5511988887777"}, headers={"Authorization": f"Bearer {TOKENS['site']}x"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    access = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == 3 and "/webhooks/whatsapp?token=***" in access[0].getMessage()
    assert ZAPI_WEBHOOK_TOKEN not in text and TOKENS["site"] not in text
    assert "5511988887777" not in text
