"""The sandbox as ``carinho run`` uses it: the simulators and the mailbox in the hub's
own process, the hub's environment pointed at them.

Found by ``carinho run`` through the ``carinho.sandbox`` entry point (the product never
imports this package: without the sandbox installed, ``carinho run --no-sandbox``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, MutableMapping
from pathlib import Path

from .mailbox import Mailbox
from .server import PORT_OFFSETS, Sandbox


def ports(base_port: int) -> list[tuple[int, str]]:
    """Every port the simulators and the mailbox take from ``base_port``."""
    return ([(base_port + offset, f"sandbox {name}") for name, offset in PORT_OFFSETS.items()]
            + [(base_port + len(PORT_OFFSETS), "sandbox mailbox")])


def start(data: Path, env: MutableMapping[str, str], relay_url: str, base_port: int, seed: bool,
          started: list[object], echo: Callable[[str], None]) -> str:
    """Start the simulators and the mailbox (appended to ``started``, for the caller to
    stop), and point ``env`` at them; e-mails land in ``data/mailbox``. Returns the
    control server's URL."""
    sb = Sandbox(host="127.0.0.1", base_port=base_port)
    started.append(sb)
    sb.start()
    env.update(sb.env())
    mail_port = base_port + len(PORT_OFFSETS)
    mailbox = Mailbox(data / "mailbox", port=mail_port)
    started.append(mailbox)
    mailbox.start()
    env.update(mailbox.env())
    secret_file = data / "feedback_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    env.setdefault("CARINHO_FEEDBACK_SECRET", secret_file.read_text().strip())
    sb.zapi.set_webhook(f"{relay_url}/webhooks/whatsapp?token={env['ZAPI_WEBHOOK_TOKEN']}")
    if seed:
        sb.seed_default()
    echo(f"  ✓ {'sandbox':<32} simulators on 127.0.0.1:{base_port}-{base_port + 8}, mailbox SMTP :{mail_port}")
    return sb.control_url
