"""WhatsApp through Z-API (CONTRACTS §4, reference/zapi.md §1–§3).

The instance id and token are path segments of every URL and together are the
credential, so URLs are only ever logged with the token replaced by ``***``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import Field

from carinho_pipelines.kernel.errors import ERROR, INVALID, REJECTED, ActionError
from carinho_pipelines.kernel.privacy import normalize_phone
from .http import HttpResource, scrub

DEFAULT_ZAPI_BASE_URL = "https://api.z-api.io"

Button = Mapping[str, str] | tuple[str, str]


class ZApiResource(HttpResource):
    """Sends WhatsApp messages and reads the instance status."""

    destination: ClassVar[str] = "whatsapp"

    base_url: str = Field(default=DEFAULT_ZAPI_BASE_URL, description="ZAPI_BASE_URL")
    instance_id: str = Field(default="", description="ZAPI_INSTANCE_ID")
    token: str = Field(default="", description="ZAPI_TOKEN: the instance token (a URL path segment).")
    client_token: str = Field(default="", description="ZAPI_CLIENT_TOKEN: the account security token.")

    def _secrets(self) -> tuple[str, ...]:
        return (self.token, self.client_token)

    def _headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        headers = super()._headers(method, idempotency_key)
        if self.client_token:
            headers["Client-Token"] = self.client_token
        return headers

    def _url(self, endpoint: str) -> str:
        if not self.instance_id or not self.token:
            raise ActionError(ERROR, "Z-API is not configured (ZAPI_INSTANCE_ID/ZAPI_TOKEN)", destination=self.destination)
        return f"{self.base_url.rstrip('/')}/instances/{self.instance_id}/token/{self.token}/{endpoint}"

    # -- sends -----------------------------------------------------------------------

    def _phone(self, phone: str) -> str:
        normalized = normalize_phone(phone)
        if not normalized:
            raise ActionError(INVALID, "no usable phone number for WhatsApp", destination=self.destination)
        return normalized

    def _send(self, endpoint: str, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        response = self.request("POST", self._url(endpoint), json_body=body, idempotency_key=idempotency_key)
        answer = self.json_of(response)
        if not isinstance(answer, dict):
            raise ActionError(
                ERROR, f"POST /{endpoint} answered without a message id", status=response.status_code if response else None,
                destination=self.destination,
            )
        if answer.get("error"):
            raise ActionError(
                REJECTED,
                f"POST /{endpoint} answered {response.status_code if response else '?'} with error: "
                f"{scrub(str(answer['error']))[:200]}",
                status=response.status_code if response else None,
                response_body=scrub(str(answer))[:1000],
                destination=self.destination,
            )
        message_id = answer.get("messageId") or answer.get("id")
        return {"zaapId": answer.get("zaapId"), "messageId": message_id, "id": answer.get("id") or message_id}

    def send_text(
        self,
        phone: str,
        message: str,
        *,
        delay_message: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /send-text``; returns ``{zaapId, messageId, id}``."""
        body: dict[str, Any] = {"phone": self._phone(phone), "message": message}
        if delay_message:
            body["delayMessage"] = delay_message
        return self._send("send-text", body, idempotency_key)

    def send_button_list(
        self,
        phone: str,
        message: str,
        buttons: Iterable[Button],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /send-button-list`` with ``buttonList.buttons[{id, label}]``."""
        button_list = [_button(b) for b in buttons]
        if not button_list:
            raise ValueError("a button list needs at least one button")
        body = {"phone": self._phone(phone), "message": message, "buttonList": {"buttons": button_list}}
        return self._send("send-button-list", body, idempotency_key)

    def send_link(
        self,
        phone: str,
        message: str,
        link_url: str,
        title: str,
        link_description: str,
        *,
        image: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /send-link``. Z-API wants the message to end with the link, so it is appended if missing."""
        text = message if message.rstrip().endswith(link_url) else f"{message.rstrip()}\n{link_url}"
        body: dict[str, Any] = {
            "phone": self._phone(phone),
            "message": text,
            "linkUrl": link_url,
            "title": title,
            "linkDescription": link_description,
        }
        if image:
            body["image"] = image
        return self._send("send-link", body, idempotency_key)

    # -- instance --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``{"connected", "smartphoneConnected", "error"}``; ActionError("unavailable") when unreachable."""
        body = self.json_of(self.request("GET", self._url("status")))
        if not isinstance(body, dict):
            raise ActionError(ERROR, "GET /status answered without a status object", destination=self.destination)
        connected = bool(body.get("connected"))
        error = body.get("error")
        return {
            "connected": connected,
            "smartphoneConnected": bool(body.get("smartphoneConnected")),
            # Z-API says "You are already connected" in `error` even when all is well
            "error": None if connected or not error else str(error),
        }


def _button(button: Button) -> dict[str, str]:
    if isinstance(button, tuple):
        button_id, label = button
        return {"id": str(button_id), "label": str(label)}
    return {"id": str(button["id"]), "label": str(button["label"])}
