"""The demo day issues the contract's inbound requests to a hub and reports the answers."""

from __future__ import annotations

from carinho_sandbox import Sandbox
from carinho_sandbox.demo import play_day


def test_play_day_against_a_recording_hub(sb: Sandbox, hub) -> None:
    lines: list[str] = []
    steps, _ = play_day(hub.url, sb.env(), sb, echo=lines.append, auto_callbacks=None)
    assert all(s.ok for s in steps), [(s.name, s.status, s.error) for s in steps]
    by_path: dict[str, list[dict]] = {}
    for r in hub.received():
        by_path.setdefault(r["path"], []).append(r)

    [lead] = by_path["/webhooks/site/lead"]
    assert lead["headers"]["authorization"] == "Bearer sandbox-site-token"
    assert lead["json"]["utm_campaign"] == "cuidado-idosos" and lead["json"]["phone"]

    [client] = by_path["/webhooks/crm/client-registered"]
    assert client["headers"]["authorization"] == "Bearer sandbox-crm-token"
    assert {"id", "name"} <= client["json"].keys()

    [service] = by_path["/webhooks/operacao/service-completed"]
    assert service["headers"]["authorization"] == "Bearer sandbox-operacao-token"
    assert {"id", "client_id"} <= service["json"].keys()

    [payment] = by_path["/webhooks/financeiro/payment"]
    assert payment["headers"]["authorization"] == "Bearer sandbox-financeiro-token"
    assert payment["json"]["status"] == "paid"

    whatsapp = [r["json"] for r in by_path["/webhooks/whatsapp"]]
    assert all(r["query"] == {"token": "sandbox-webhook-token"} for r in by_path["/webhooks/whatsapp"])
    assert [w["type"] for w in whatsapp] == ["ReceivedCallback"] * 4
    assert sum("text" in w for w in whatsapp) == 3
    assert whatsapp[-1]["buttonsResponseMessage"]["buttonId"] == "rating_5"

    report = "\n".join(lines)
    assert f"{len(steps)}/{len(steps)} passos aceitos" in report and len(steps) == 8
    assert "98765-4321" not in report and "5511976543210" not in report  # phones masked


def test_play_day_through_the_control_url_and_signing(sb: Sandbox, hub) -> None:
    env = sb.env()
    env["CARINHO_FINANCEIRO_WEBHOOK_SECRET"] = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLWRlbW8="
    steps, _ = play_day(hub.url, env, sb.control_url, echo=lambda _: None)
    assert all(s.ok for s in steps)
    payment = next(r for r in hub.received() if r["path"] == "/webhooks/financeiro/payment")
    assert payment["headers"]["webhook-signature"].startswith("v1,")
    assert sb.zapi_state.auto_callbacks == 1.0  # the demo turns delivery playback on


def test_play_day_reports_a_hub_that_is_not_there(sb: Sandbox) -> None:
    lines: list[str] = []
    steps, _ = play_day("http://127.0.0.1:9", sb.env(), sb, echo=lines.append)
    assert not any(s.ok for s in steps)
    assert all(s.error for s in steps)
    assert "0/8 passos aceitos pelo hub" in lines[-1]
