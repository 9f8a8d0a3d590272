"""Fixtures for the outbound clients: the sandbox's real HTTP simulators and a real SMTP server."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from carinho_pipelines.resources import SYSTEM_RESOURCES, InternalSystemResource, ZApiResource
from carinho_sandbox import Sandbox
from tests.support import MailSink

#: CRM signs what it receives: forwards to it must carry a valid Standard-Webhooks signature
CRM_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"carinho-test-crm-signing-key-0001").decode()
PAGE_SIZE = 2
SMTP_USER = "hub"
SMTP_PASSWORD = "smtp-test-password"


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(base_port=0, page_size=PAGE_SIZE, webhook_secrets={"crm": CRM_WEBHOOK_SECRET}).start()
    yield sb
    sb.stop()


@pytest.fixture()
def sb(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    running_sandbox.zapi.set_auto_callbacks(None)
    return running_sandbox


@pytest.fixture()
def system(sb: Sandbox) -> Iterator[Callable[..., InternalSystemResource]]:
    """Build a system's resource pointed at the sandbox, the way the hub configures it."""
    built: list[InternalSystemResource] = []

    def make(name: str, **overrides: Any) -> InternalSystemResource:
        config: dict[str, Any] = {"base_url": sb.url(name), "token": sb.token(name)}
        if sb.systems[name].webhook_secret:
            config["webhook_secret"] = sb.systems[name].webhook_secret
        config.update(overrides)
        resource = SYSTEM_RESOURCES[name](**config)
        built.append(resource)
        return resource

    yield make
    for resource in built:
        resource.close()


@pytest.fixture()
def zapi(sb: Sandbox) -> Iterator[ZApiResource]:
    env = sb.env()
    resource = ZApiResource(
        base_url=env["ZAPI_BASE_URL"],
        instance_id=env["ZAPI_INSTANCE_ID"],
        token=env["ZAPI_TOKEN"],
        client_token=env["ZAPI_CLIENT_TOKEN"],
    )
    yield resource
    resource.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
        and auth_data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False
    )
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture()
def mail(smtp_server: tuple[MailSink, int]) -> tuple[MailSink, int]:
    smtp_server[0].clear()
    return smtp_server
