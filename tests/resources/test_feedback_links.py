"""Signed feedback links: round trip, tampering, expiry."""

from __future__ import annotations

import base64
import json

import pytest

from carinho_pipelines.events import feedback_links
from carinho_pipelines.events.feedback_links import (
    FeedbackTokenError,
    FeedbackTokenExpired,
    make_link,
    verify_token,
)

NOW = 1_750_000_000.0
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("CARINHO_FEEDBACK_SECRET", "test-feedback-secret")
    monkeypatch.setenv("CARINHO_FEEDBACK_URL", "https://carinho.com.vc/feedback")


def token_of(link: str) -> str:
    assert link.startswith("https://carinho.com.vc/feedback?token=")
    return link.split("?token=", 1)[1]


def test_round_trip_names_service_client_and_caregiver():
    token = token_of(make_link(90, 1, 300, now=NOW))
    claims = verify_token(token, now=NOW + 6 * DAY)
    assert (claims.service_id, claims.client_id, claims.caregiver_id) == ("90", "1", "300")
    assert claims.expires_at == NOW + 7 * DAY


def test_expires_after_seven_days():
    token = token_of(make_link(90, 1, 300, now=NOW))
    with pytest.raises(FeedbackTokenExpired):
        verify_token(token, now=NOW + 7 * DAY)


def test_a_tampered_token_is_refused():
    payload, signature = token_of(make_link(90, 1, 300, now=NOW)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["service_id"] = "91"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(FeedbackTokenError):
        verify_token(f"{forged}.{signature}", now=NOW)
    with pytest.raises(FeedbackTokenError):
        verify_token("not-a-token", now=NOW)


def test_another_secret_does_not_verify(monkeypatch):
    token = token_of(make_link(90, 1, 300, now=NOW))
    monkeypatch.setenv("CARINHO_FEEDBACK_SECRET", "rotated")
    with pytest.raises(FeedbackTokenError) as caught:
        verify_token(token, now=NOW)
    assert not isinstance(caught.value, FeedbackTokenExpired)


def test_a_url_with_a_query_gets_the_token_appended(monkeypatch):
    monkeypatch.setenv("CARINHO_FEEDBACK_URL", "https://carinho.com.vc/f?src=email")
    assert make_link(90).startswith("https://carinho.com.vc/f?src=email&token=")


def test_no_secret_no_link(monkeypatch):
    monkeypatch.delenv("CARINHO_FEEDBACK_SECRET")
    with pytest.raises(RuntimeError):
        feedback_links.make_link(90)
