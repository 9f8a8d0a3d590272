"""Monitoring and alerting (CONTRACTS §6, §7): WhatsApp instance health, the §7
metrics and queue SLAs, alert e-mails with escalation, the 07:30 checklist and LGPD
retention.

- ``thresholds``: the §7 table and escalation addresses, as data
- ``metrics``: the numbers, computed from the event store and the Dagster instance
- ``alerts``: the state machine (enter a level → one e-mail; recover → one e-mail)
- ``alert_sensor``, ``whatsapp_health``, ``checklist``, ``retention``: the Dagster parts

``defs`` (a ``Definitions`` without resources) is loaded on first access, so the relay
can import ``metrics`` without paying for ``import dagster``.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(name)
