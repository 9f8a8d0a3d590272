"""The error contract (CONTRACTS §2): JSON errors with the right status, nothing stored."""

import gzip
import json


def test_malformed_json_is_400(relay):
    resp = relay.post("/webhooks/site/lead", "site", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "malformed_json"
    assert relay.rows() == []


def test_not_json_is_415(relay):
    resp = relay.post("/webhooks/site/lead", "site", content=b"name=Ana", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and resp.json()["error"] == "unsupported_media_type"
    assert relay.rows() == []


def test_non_object_json_is_422(relay):
    resp = relay.post("/webhooks/site/lead", "site", json=[1, 2])
    assert resp.status_code == 422


def test_body_over_one_mib_is_413_also_when_gzipped(relay):
    big = {"name": "x", "phone": "11988887777", "message": "a" * (1024 * 1024)}
    assert relay.post("/webhooks/site/lead", "site", json=big).status_code == 413
    bomb = gzip.compress(json.dumps(big).encode())
    assert len(bomb) < 64 * 1024
    resp = relay.post(
        "/webhooks/site/lead", "site", content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert resp.status_code == 413 and resp.json()["error"] == "payload_too_large"
    assert relay.rows() == []


def test_unknown_route_and_wrong_method_answer_json(relay):
    resp = relay.http.get("/nowhere")
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    resp = relay.http.get("/webhooks/site/lead")
    assert resp.status_code == 405 and resp.json()["error"] == "method_not_allowed"
