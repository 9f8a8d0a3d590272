"""The self-describing API: /openapi.json (OpenAPI 3.1, every body and answer
described, derived from the catalogue), 422s naming every field, /docs without a CDN."""

from __future__ import annotations

import re

import jsonschema
from openapi_spec_validator import validate

from carinho_pipelines.kernel import catalogue
from relay import validation
from tests.conftest import ZAPI_INSTANCE_ID, ZAPI_WEBHOOK_TOKEN


def _doc(relay) -> dict:
    resp = relay.http.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_document_is_valid_openapi_3_1(relay):
    doc = _doc(relay)
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_event_type_has_a_schema_derived_from_the_catalogue_with_a_valid_example(relay):
    schemas = _doc(relay)["components"]["schemas"]
    for name, spec in catalogue.CATALOGUE.items():
        schema = schemas[name]
        assert set(schema["properties"]) == {f.name for f in spec.fields}, name
        assert set(schema.get("required", [])) == set(spec.required), name
        assert len(spec.fields) >= 3 and spec.example, f"{name}: fields and a realistic example"
        # the example passes the very validation the relay applies
        assert validation.payload_problems(name, spec.example) == [], name
        jsonschema.Draft202012Validator(schema, format_checker=validation.FORMATS).validate(spec.example)
    lead = schemas["lead.created"]
    assert lead["properties"]["email"]["format"] == "email"
    assert [a["required"] for a in lead["anyOf"]] == [["phone"], ["email"]]
    assert schemas["client.registered"]["properties"]["estimated_value"]["type"] == ["number", "null"]


def test_every_webhook_route_has_its_body_schema_and_examples(relay):
    doc = _doc(relay)
    webhooks = {path: item["post"] for path, item in doc["paths"].items()
                if path.startswith("/webhooks/") or path == "/api/events" and "post" in item}
    assert len(webhooks) == 10
    for path, op in webhooks.items():
        media = op["requestBody"]["content"]["application/json"]
        assert media["schema"] != {"type": "object"}, path
        assert media["examples"], path
        assert {"202", "401", "422"} <= set(op["responses"]), path
    site = webhooks["/webhooks/site/lead"]["requestBody"]["content"]["application/json"]
    assert site["schema"]["allOf"][0] == {"$ref": "#/components/schemas/lead.created"}
    canonical = webhooks["/api/events"]["requestBody"]["content"]["application/json"]
    alternatives = {alt["title"]: alt for alt in canonical["schema"]["oneOf"]}
    assert "payment.received" in alternatives and "whatsapp.inbound" not in alternatives  # Z-API's, not postable
    assert alternatives["payment.received"]["properties"]["payload"] == {"$ref": "#/components/schemas/payment.received"}
    assert set(canonical["examples"]) == set(alternatives)
    zapi = webhooks["/webhooks/whatsapp"]["requestBody"]["content"]["application/json"]["schema"]
    received = _resolve(doc, zapi["anyOf"][0])
    assert received["title"] == "ReceivedCallback" and "messageId" in received["required"]


def test_the_operations_api_describes_its_request_and_response_bodies(relay):
    doc = _doc(relay)
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
           if path.startswith(("/api/dlq", "/api/sync", "/status", "/health")) or (path.startswith("/api/events")
                                                                                 and method == "get")]
    assert len(ops) == 15  # with /health/ready and /api/dlq/recover
    for path, method, op in ops:
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok, (method, path)
        for code in ok:
            assert op["responses"][code]["content"]["application/json"]["schema"], (method, path, code)
    archive = doc["paths"]["/api/dlq/{id}/archive"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert _resolve(doc, archive)["required"] == ["reason"]
    retry_all = _resolve(doc, doc["paths"]["/api/dlq/retry-all"]["post"]["requestBody"]["content"]
                         ["application/json"]["schema"])
    assert retry_all["properties"]["limit"] == {"type": "integer", "minimum": 1, "maximum": 100}
    item = doc["components"]["schemas"]["DlqItem"]
    assert {"id", "kind", "event_id", "failed_ops", "error_class", "error_message", "attempts", "first_failed_at",
            "last_failed_at", "status", "run_url"} <= set(item["properties"])  # CONTRACTS §10
    params = {p["name"] for p in doc["paths"]["/api/events"]["get"]["parameters"]}
    assert params == {"type", "source", "status", "from", "to", "phone", "email", "cpf", "page", "per_page"}
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"] and "fields" in error["properties"]


def test_a_422_lists_every_invalid_or_missing_field_at_once(relay):
    resp = relay.post("/api/events", "crm", json={})
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "validation_failed" and body["message"]
    assert {p["field"] for p in body["fields"]} == {"event_type", "source_system", "payload"}
    assert body["field"] == body["fields"][0]["field"]  # the single-field contract still holds

    resp = relay.post("/api/events", "crm", json={"event_type": "client.registered", "source_system": "crm",
                                                  "payload": {"email": "não-é-email", "estimated_value": "muito"},
                                                  "idempotency_key": ""})
    assert resp.status_code == 422
    problems = {p["field"]: p["reason"] for p in resp.json()["fields"]}
    assert problems == {
        "idempotency_key": "required",
        "payload.id": "required",
        "payload.name": "required",
        "payload.email": "is not a valid e-mail address",
        "payload.estimated_value": "must be a number",
    }

    resp = relay.post("/api/events", "crm", json={"event_type": "lead.exploded", "payload": []})
    body = resp.json()
    assert body["error"] == "unknown_event_type" and "lead.updated" in body["known"]
    assert {p["field"] for p in body["fields"]} == {"event_type", "source_system", "payload"}

    resp = relay.post("/webhooks/systems/crm", "crm", json={"event_type": "client.registered", "idempotency_key": 5,
                                                            "payload": {"email": "x"}})
    assert {p["field"] for p in resp.json()["fields"]} == {"idempotency_key", "id", "name", "email"}

    resp = relay.post("/webhooks/site/lead", "site", json={"name": 7, "utm_source": ["x"]})
    assert resp.status_code == 422
    assert {p["field"] for p in resp.json()["fields"]} == {"name", "utm_source", "phone or email"}

    resp = relay.post("/webhooks/financeiro/payment", "financeiro", json={"status": "refunded", "amount": -1})
    assert {p["field"] for p in resp.json()["fields"]} == {"status", "id", "amount"}

    resp = relay.post("/webhooks/whatsapp/status", headers={"z-api-token": ZAPI_WEBHOOK_TOKEN},
                      json={"type": "MessageStatusCallback", "instanceId": ZAPI_INSTANCE_ID, "ids": []})
    assert resp.status_code == 422
    assert {p["field"] for p in resp.json()["fields"]} == {"status", "ids"}
    assert relay.rows() == []  # nothing stored for any of them


def test_a_422_lists_every_invalid_query_parameter(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_API_KEYS", "ops:test-ops-key:*")
    resp = relay.http.get("/api/events", params={"status": "lost", "from": "ontem", "page": "0", "per_page": "x"},
                          headers={"X-API-Key": "test-ops-key"})
    assert resp.status_code == 422
    assert [p["field"] for p in resp.json()["fields"]] == ["status", "from", "page", "per_page"]


def test_docs_renders_the_reference_from_packaged_assets_without_a_cdn(relay):
    page = relay.http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(src.startswith("/") for src in sources), sources  # nothing from another host
    assert "/openapi.json" in page.text
    for src in sources:
        asset = relay.http.get(src)
        assert asset.status_code == 200, src
    bundle = relay.http.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 500_000


def test_what_a_database_cannot_store_is_a_422_not_a_500(relay, monkeypatch, tmp_path):
    """Found by the fuzzer: NUL characters, lone surrogates, out-of-range time zones and a
    float ``limit`` reached PostgreSQL or Python and answered 500."""
    nul = b'{"event_type": "lead.updated", "source_system": "crm", "payload": {"id": 1, "name": "a\\u0000b"}}'
    resp = relay.post("/api/events", "crm", content=nul, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "payload.name"
    surrogate = b'{"name": "\\udca8", "phone": "5511987654321"}'
    resp = relay.post("/webhooks/site/lead", "site", content=surrogate, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["field"] == "name"
    assert relay.rows() == []

    from dagster import DagsterInstance

    from relay import runs

    monkeypatch.setenv("CARINHO_API_KEYS", "ops:test-ops-key:*")
    key = {"X-API-Key": "test-ops-key"}
    assert relay.http.get("/api/events", params={"type": "lead\x00"}, headers=key).status_code == 422
    # an offset PostgreSQL refuses (+20:08) is read in UTC; one that leaves the calendar is a 422
    assert relay.http.get("/api/events", params={"from": "0030-03-24T02:29:15+20:08"}, headers=key).status_code == 200
    resp = relay.http.get("/api/events", params={"to": "0001-01-01T00:00:00+20:00"}, headers=key)
    assert resp.status_code == 422 and resp.json()["field"] == "to"
    assert relay.http.get("/api/dlq/abc%00def", headers=key).status_code == 422

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        monkeypatch.setattr(runs, "_instance", instance)
        resp = relay.http.post("/api/dlq/retry-all", json={"limit": 5.0, "event_type": 3, "kind": "x"}, headers=key)
        assert resp.status_code == 422 and {p["field"] for p in resp.json()["fields"]} == {"event_type", "kind"}
        resp = relay.http.post("/api/dlq/retry-all", json={"limit": 5.0}, headers=key)
        assert resp.status_code == 202 and resp.json()["matched"] == 0
