"""E-mail over SMTP (CONTRACTS §4, §8): multipart plain text + HTML.

A temporary failure (connection refused, timeout, SMTP 4xx) is ``unavailable`` and
will be retried; a permanent one (5xx, e.g. recipient refused) is ``rejected``.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from carinho_pipelines.kernel import templates
from carinho_pipelines.kernel.errors import ERROR, INVALID, REJECTED, UNAVAILABLE, ActionError
from carinho_pipelines.kernel.log_redaction import register_secret
from carinho_pipelines.kernel.privacy import mask_email
from .http import scrub

logger = logging.getLogger("carinho_pipelines.resources")

FROM_ADDRESS = "naoresponda@carinho.com.vc"
FROM_NAME = "Carinho com Você"
MAIL_DOMAIN = "carinho.com.vc"


class EmailResource(ConfigurableResource):
    """Sends the hub's e-mails (welcome, feedback request, alerts)."""

    destination: ClassVar[str] = "email"

    host: str = Field(default="localhost", description="SMTP_HOST")
    port: int = Field(default=587, description="SMTP_PORT (465 means implicit TLS)")
    user: str = Field(default="", description="SMTP_USER; empty means no authentication")
    password: str = Field(default="", description="SMTP_PASSWORD")
    starttls: bool = Field(default=True, description="SMTP_STARTTLS")
    from_address: str = Field(default=FROM_ADDRESS)
    from_name: str = Field(default=FROM_NAME)
    timeout_seconds: float = Field(default=10.0)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        register_secret(self.password)

    # -- messages --------------------------------------------------------------------

    def build_message(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        html: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> EmailMessage:
        recipients = [to] if isinstance(to, str) else list(to)
        if not recipients or not all(r and "@" in r for r in recipients):
            raise ActionError(INVALID, "no valid e-mail recipient", destination=self.destination)
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = Address(display_name=self.from_name, addr_spec=self.from_address)
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=True)
        # a stable Message-ID lets a receiving system recognise a retried send
        if idempotency_key:
            digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
            msg["Message-ID"] = f"<{digest}@{MAIL_DOMAIN}>"
        else:
            msg["Message-ID"] = make_msgid(domain=MAIL_DOMAIN)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
        return msg

    def send(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        html: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send one message; returns ``{"message_id", "recipients"}`` (recipients masked)."""
        msg = self.build_message(to, subject, text, html, idempotency_key=idempotency_key)
        recipients = [to] if isinstance(to, str) else list(to)
        masked = [mask_email(r) for r in recipients]
        try:
            with self._connect() as smtp:
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error_class = UNAVAILABLE if codes and all(400 <= c < 500 for c in codes) else REJECTED
            raise ActionError(
                error_class,
                f"SMTP refused recipient(s) {', '.join(m or '' for m in masked)}: {codes}",
                status=codes[0] if codes else None,
                destination=self.destination,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # sender refused, data refused, authentication failed, …
            error_class = UNAVAILABLE if 400 <= exc.smtp_code < 500 else REJECTED
            raise ActionError(
                error_class,
                f"SMTP answered {exc.smtp_code}: {_reason(exc.smtp_error)}",
                status=exc.smtp_code,
                destination=self.destination,
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise self._unavailable(exc) from exc
        except smtplib.SMTPException as exc:  # e.g. STARTTLS not supported: a configuration problem
            raise ActionError(ERROR, f"SMTP error: {type(exc).__name__}", destination=self.destination) from exc
        except (TimeoutError, OSError) as exc:  # refused, unreachable, timed out, TLS failure
            raise self._unavailable(exc) from exc
        logger.info("e-mail %r sent to %s", subject, ", ".join(m or "" for m in masked))
        return {"message_id": msg["Message-ID"], "recipients": masked}

    def send_alert(self, to: str | Sequence[str], subject: str, text: str) -> dict[str, Any]:
        """A plain-text operational message (monitoring, daily checklist)."""
        return self.send(to, subject, text)

    def send_welcome(self, to: str, nome: Any = None, *, idempotency_key: str | None = None) -> dict[str, Any]:
        content = templates.welcome_email(nome)
        return self.send(to, content.subject, content.text, content.html, idempotency_key=idempotency_key)

    def send_feedback_request(
        self,
        to: str,
        link: str,
        nome: Any = None,
        cuidador: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        content = templates.feedback_email(link, nome=nome, cuidador=cuidador)
        return self.send(to, content.subject, content.text, content.html, idempotency_key=idempotency_key)

    def _unavailable(self, exc: BaseException) -> ActionError:
        return ActionError(
            UNAVAILABLE,
            f"SMTP server {self.host}:{self.port} unavailable: {type(exc).__name__}",
            destination=self.destination,
        )

    # -- transport -------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        register_secret(self.password)
        if self.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
            except BaseException:
                smtp.close()
                raise
        if self.user:
            try:
                smtp.login(self.user, self.password)
            except BaseException:
                smtp.close()
                raise
        return smtp


def _reason(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return scrub(" ".join(text.split()))[:200]
