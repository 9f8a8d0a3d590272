"""The sandbox container: the simulators on 127.0.0.1:$CARINHO_SANDBOX_PORT.. +9 (the
control server is +9) and an SMTP mailbox on +10 (e-mails saved under
/opt/sandbox/mailbox), seeded with a day of data, Z-API's callbacks pointed at the
relay. ``--check`` is the HEALTHCHECK: the control server answers."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import httpx

BASE = int(os.environ.get("CARINHO_SANDBOX_PORT", "8100"))
CONTROL = f"http://127.0.0.1:{BASE + 9}"


def main() -> None:
    from carinho_sandbox import PORT_OFFSETS, Sandbox
    from carinho_sandbox.mailbox import Mailbox

    relay = f"http://127.0.0.1:{os.environ.get('CARINHO_RELAY_PORT', '8000')}"
    sb = Sandbox(host="127.0.0.1", base_port=BASE).start()
    mailbox = Mailbox(Path("/opt/sandbox/mailbox"), port=BASE + len(PORT_OFFSETS)).start()
    if os.environ.get("CARINHO_SANDBOX_SEED", "true").lower() in ("1", "true", "yes"):
        sb.seed_default()
    sb.zapi.set_webhook(f"{relay}/webhooks/whatsapp?token={sb.webhook_token}")
    print(f"sandbox up: simulators 127.0.0.1:{BASE}-{BASE + 8}, control {CONTROL}, "
          f"SMTP mailbox :{BASE + len(PORT_OFFSETS)}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    mailbox.stop()
    sb.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        try:
            sys.exit(0 if httpx.get(f"{CONTROL}/systems", timeout=3).status_code == 200 else 1)
        except httpx.HTTPError:
            sys.exit(1)
    main()
