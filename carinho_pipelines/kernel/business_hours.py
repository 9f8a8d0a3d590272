"""Customer messages go out in business hours: 08:00–20:00, São Paulo time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
OPENS = dt.time(8, 0)
CLOSES = dt.time(20, 0)
FEEDBACK_DELAY = dt.timedelta(hours=2)


def next_business_moment(when: dt.datetime) -> dt.datetime:
    """``when`` if it falls in business hours, else the next 08:00 (São Paulo)."""
    local = when.astimezone(SAO_PAULO)
    if local.time() < OPENS:
        local = local.replace(hour=8, minute=0, second=0, microsecond=0)
    elif local.time() > CLOSES:
        local = (local + dt.timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    return local.astimezone(dt.timezone.utc)


def feedback_due(completed_at: dt.datetime) -> dt.datetime:
    """When to ask for feedback: 2 h after the visit, moved into business hours."""
    return next_business_moment(completed_at + FEEDBACK_DELAY)
