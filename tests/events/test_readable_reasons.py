"""A downstream system's refusal stays readable in the DLQ and in the run's metadata,
with the personal data inside it masked (not replaced by a length)."""

from __future__ import annotations

from dagster import DagsterEventType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from carinho_pipelines import dlq
from carinho_pipelines.events import ledger
from carinho_pipelines.kernel.privacy import mask_in_text, mask_response, pii_values
from tests.support import ServerThread

LEAD = {"id": 1, "name": "Maria da Silva", "phone": "5511988887777", "email": "maria.silva@exemplo.com.br",
        "cpf": "123.456.789-00"}
RAW = ("Maria", "Silva", "988887777", "maria.silva@", "123.456.789", "98765432100")


async def refuse(request: Request) -> JSONResponse:
    data = (await request.json())["data"]
    return JSONResponse(status_code=422, content={
        "message": f"Lead {data['name']} ({data['email']}, {data['phone']}, CPF {data['cpf']}) já existe com outro CPF",
        "errors": {"email": [f"{data['email']} já cadastrado"], "cpf": ["CPF: 98765432100 pertence a outro cliente"]},
    })


def _shown(value) -> str:
    return str(value)


def test_a_422_reason_is_kept_with_the_personal_data_in_it_masked(hub, monkeypatch):
    crm = ServerThread(Starlette(routes=[Route("/api/v1/webhooks/events", refuse, methods=["POST"])])).start()
    try:
        monkeypatch.setenv("CARINHO_CRM_URL", crm.url)
        result = hub.run(hub.event("lead.updated", "crm", LEAD))
    finally:
        crm.stop()
    assert not result.success

    failure = dlq.failure_of(hub.instance, result.run_id)
    response = failure.responses["forward_crm"]
    assert response["status"] == 422 and response["error_class"] == "invalid"
    assert "já existe com outro CPF" in response["message"]
    assert "Lead M*** d*** S*** (m***@exemplo.com.br, 55119****7777, CPF ***.***.***-00)" in response["message"]
    assert "já cadastrado" in response["response_body"] and "pertence a outro cliente" in response["response_body"]
    item = dlq.item(hub.instance, hub.instance.get_run_by_id(result.run_id))
    assert "answered 422: Lead M*** d*** S***" in item["error_message"] and "já existe" in item["error_message"]
    event_id = int(hub.instance.get_run_by_id(result.run_id).tags["carinho/event_id"])
    action = ledger.get_action(hub.store, event_id, "forward_crm")
    assert "já existe com outro CPF" in action.error_message

    # what the UI shows: the step failure's metadata, as the run wrote it
    [record] = hub.instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
    metadata = record.dagster_event.event_specific_data.user_failure_data.metadata
    written = _shown(metadata["response"].value) + record.dagster_event.event_specific_data.user_failure_data.description
    assert "já existe com outro CPF" in written and "<" not in response["message"]
    for shown in (written, _shown(failure.responses), item["error_message"], action.error_message):
        assert not any(raw in shown for raw in RAW), shown


def test_masking_inside_free_text():
    known = pii_values({"data": LEAD})
    text = mask_in_text("Maria ligou de 11 98888-7777 em 2026-12-01; CPF: 98765432100; joao@x.com.br", known)
    assert text == "M*** ligou de 11988****7777 em 2026-12-01; CPF: ***.***.***-00; j***@x.com.br"
    masked = mask_response({"message": "Telefone 5511988887777 inválido", "name": "Ana Luz", "content": "oi, tudo bem?",
                            "token": "s3cr3t", "status": 422})
    assert masked == {"message": "Telefone 55119****7777 inválido", "name": "A*** L***", "content": "<13 chars>",
                      "token": "***", "status": 422}
