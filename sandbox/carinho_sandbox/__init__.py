"""Sandbox: Z-API and the internal systems as real, stateful, fault-injectable HTTP servers.

Used by the one-command demo, by ops to rehearse incidents and by the tests::

    from carinho_sandbox import Sandbox

    sb = Sandbox(base_port=0).start()     # every server on a free loopback port
    os.environ.update(sb.env(webhook_url="http://127.0.0.1:8000/webhooks/whatsapp"))
    sb.fail("crm", status=503, count=2)   # the next two CRM calls fail
    sb.down("financeiro")                 # connection refused until sb.up("financeiro")
    sb.zapi.emit_received("5511988887777", text="Oi!")
    sb.stop()

Faithfulness notes: Operação's completed-services feed keeps listing billed services (with
``billed: true``) like the original; only 2xx answers are remembered for ``Idempotency-Key``
replays (a rejected write may be corrected and retried with the same key).
"""

from carinho_sandbox.server import ALL_SYSTEMS, INTERNAL_SYSTEMS, PORT_OFFSETS, Sandbox
from carinho_sandbox.zapi import CallbackFailed, NoWebhook

__all__ = ["ALL_SYSTEMS", "INTERNAL_SYSTEMS", "PORT_OFFSETS", "CallbackFailed", "NoWebhook", "Sandbox"]
