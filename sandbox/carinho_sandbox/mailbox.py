"""A local SMTP server for the embedded default: e-mails the hub sends (welcome,
feedback requests, alerts, the daily checklist) land as ``.eml`` files in a folder
instead of failing for want of a mail server."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._seq):04d}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class Mailbox:
    """``Mailbox(folder, port).start()``; the hub's ``SMTP_*`` for it from :meth:`env`."""

    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        self._controller = Controller(_SaveToFolder(folder), hostname=host, port=port)

    def start(self) -> "Mailbox":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": self.host, "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "false",
                "SMTP_USER": "", "SMTP_PASSWORD": ""}

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))
