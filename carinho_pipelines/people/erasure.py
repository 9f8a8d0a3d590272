"""Erase a person on request (LGPD art. 18; issue 16).

A person is named by one phone, e-mail or CPF; their events are found through the keyed
hashes stored at ingest (:mod:`carinho_pipelines.kernel.person_keys`). For each one, in
one transaction:

* the payload is removed (``payload_purged_at`` set, as retention does; the row, type and
  timestamps stay), and an event not yet dispatched is filtered (``erased``): never run;
* every action of the event not yet done is marked ``erased`` in the ledger, so a queued
  run, a re-drive or a recovery skips it instead of sending anything; the results kept
  of the done ones (downstream ids, previews) are removed;
* their WhatsApp outbox rows lose phone and body (a pending one is ``cancelled``), the
  auto-reply guard forgets the phone, and the hashes themselves are deleted.

The Dagster instance holds no personal data to erase: run tags carry ids and types, and
every log line and materialization preview is masked when written (a test searches
them). Idempotent: a second request finds nothing and erases nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from carinho_pipelines.kernel import person_keys
from carinho_pipelines.kernel.catalogue import CATALOGUE
from carinho_pipelines.store import EventStore, utcnow
from carinho_pipelines.store.tables import (
    auto_reply_guard,
    event_actions,
    event_person_keys,
    events,
    whatsapp_outbox,
)

#: the ledger status of an action that erasure cancelled (events.ledger.DONE has it)
ERASED = "erased"
REASON = "erased on request (LGPD art. 18)"


class NotConfigured(Exception):
    """No ``CARINHO_PERSON_KEY_SECRET``: people cannot be found, so none can be erased."""


@dataclass(frozen=True)
class Erased:
    events: int
    cancelled_events: int
    cancelled_actions: int
    outbox_rows: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def erase(store: EventStore, kind: str, normalised: str) -> Erased:
    """Erase everything of the person whose ``kind`` (phone/email/cpf) is ``normalised``."""
    key = person_keys.secret()
    if key is None:
        raise NotConfigured("CARINHO_PERSON_KEY_SECRET is not set")
    digest = person_keys.digest(kind, normalised, key)
    now = utcnow()
    with store.engine.begin() as conn:
        ids = list(conn.execute(sa.select(event_person_keys.c.event_id).where(
            event_person_keys.c.kind == kind, event_person_keys.c.digest == digest).distinct()).scalars())
        if not ids:
            return Erased(0, 0, 0, 0)
        rows = conn.execute(sa.select(events.c.id, events.c.event_type, events.c.payload)
                            .where(events.c.id.in_(ids))).mappings().all()
        # the person's phones, whichever key named them: their outbox rows and auto-reply
        # guard are theirs too (an erasure by e-mail still forgets the phone)
        phones = {normalised} if kind == "phone" else set()
        phones |= {v for row in rows for kind, v in person_keys.values_of(row["payload"]) if kind == "phone"}
        cancelled_events = conn.execute(
            events.update().where(events.c.id.in_(ids), events.c.run_id.is_(None), events.c.filtered_reason.is_(None))
            .values(filtered_reason=ERASED)).rowcount
        conn.execute(events.update().where(events.c.id.in_(ids)).values(payload=None, payload_purged_at=now))
        done = {(r.event_id, r.action) for r in conn.execute(
            sa.select(event_actions.c.event_id, event_actions.c.action).where(
                event_actions.c.event_id.in_(ids), event_actions.c.status.in_(("succeeded", "skipped", ERASED))))}
        conn.execute(event_actions.update().where(event_actions.c.event_id.in_(ids)).values(result=None))
        cancelled_actions = 0
        for row in rows:
            spec = CATALOGUE.get(row["event_type"])
            for action in (spec.actions if spec else ()):
                if (row["id"], action.name) in done:
                    continue
                updated = conn.execute(event_actions.update().where(
                    event_actions.c.event_id == row["id"], event_actions.c.action == action.name).values(
                    status=ERASED, error_class=None, error_message=REASON, updated_at=now)).rowcount
                if not updated:
                    conn.execute(event_actions.insert().values(event_id=row["id"], action=action.name, status=ERASED,
                                                               error_message=REASON, attempts=0, updated_at=now))
                cancelled_actions += 1
        outbox = conn.execute(whatsapp_outbox.update().where(
            sa.or_(whatsapp_outbox.c.event_id.in_(ids), whatsapp_outbox.c.phone.in_(sorted(phones)))).values(
            phone="", body={}, last_error=REASON,
            status=sa.case((whatsapp_outbox.c.status.in_(("pending", "sending")), "cancelled"),
                           else_=whatsapp_outbox.c.status))).rowcount
        if phones:
            conn.execute(auto_reply_guard.delete().where(auto_reply_guard.c.phone.in_(sorted(phones))))
        conn.execute(event_person_keys.delete().where(event_person_keys.c.event_id.in_(ids)))
    return Erased(len(ids), cancelled_events, cancelled_actions, outbox)
