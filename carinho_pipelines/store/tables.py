"""Event store schema (SQLAlchemy Core). Changes go through alembic migrations in
``carinho_pipelines/store/migrations``; a test checks the migrations produce exactly this schema."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("queue", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    # When the event is due (later than received_at for delayed events).
    sa.Column("available_at", Timestamp, nullable=False),
    # Set for events recorded but never dispatched (fromMe, groups, connection callbacks…).
    sa.Column("filtered_reason", sa.String(64), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("dispatched_at", Timestamp, nullable=True),
    # Set by the relay when it submits the run itself (direct submission); the sensor
    # leaves a freshly claimed event alone and takes over once the claim is stale.
    sa.Column("submit_claimed_at", Timestamp, nullable=True),
    # Retention (LGPD) blanks the payload and records when.
    sa.Column("payload_purged_at", Timestamp, nullable=True),
    sa.UniqueConstraint("source", "idempotency_key", name="uq_events_source_idempotency_key"),
)
sa.Index("ix_events_pending", events.c.run_id, events.c.available_at)
sa.Index("ix_events_type_received", events.c.event_type, events.c.received_at)

# Who an event is about, without keeping it in clear: a keyed hash (HMAC-SHA256 with
# CARINHO_PERSON_KEY_SECRET) of each normalised phone, e-mail and CPF of the payload,
# written in the ingest's transaction (kernel/person_keys.py). Search and erasure by
# person go through it.
event_person_keys = sa.Table(
    "event_person_keys",
    metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("event_id", "kind", "digest", name="pk_event_person_keys"),
)
sa.Index("ix_event_person_keys_digest", event_person_keys.c.kind, event_person_keys.c.digest)

# Latest known WhatsApp status of each outbound message; statuses only move forward.
whatsapp_message_status = sa.Table(
    "whatsapp_message_status",
    metadata,
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    # SENT < RECEIVED < READ < PLAYED, so the upsert can refuse to go backwards.
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Connected/Disconnected callbacks, append-only; the instance state is the latest row.
whatsapp_connection = sa.Table(
    "whatsapp_connection",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("connected", sa.Boolean, nullable=False),
    sa.Column("error", sa.String(255), nullable=True),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
)

# Operations API keys created with `carinho apikey create` (keys from CARINHO_API_KEYS
# live only in the environment). Keys are 32 random bytes, so a SHA-256 digest is a
# safe hash and lets a request find its key with one indexed lookup.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(512), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# Every mutating call of the operations API: who, what, on what.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("key_name", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
)

# One row per (event, action): what each action of an event's run did. An action
# that succeeded is never run again, not by an op retry nor by a re-execution.
event_actions = sa.Table(
    "event_actions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    # succeeded | skipped | held | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error_class", sa.String(16), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("event_id", "action", name="uq_event_actions_event_action"),
)

# Outbound WhatsApp messages. Kept here first, so a message is never lost while Z-API
# is unreachable or the instance is disconnected, and sent at most once.
whatsapp_outbox = sa.Table(
    "whatsapp_outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False),
    # text | button_list | link
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    # pending | sending | sent | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message_id", sa.String(128), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.UniqueConstraint("event_id", "action", name="uq_whatsapp_outbox_event_action"),
)
sa.Index("ix_whatsapp_outbox_status", whatsapp_outbox.c.status, whatsapp_outbox.c.id)
sa.Index("ix_whatsapp_outbox_message_id", whatsapp_outbox.c.message_id)

# The lead auto-reply goes at most once per phone per 24 h; the conditional upsert on
# this row decides atomically, also between concurrent runs.
auto_reply_guard = sa.Table(
    "auto_reply_guard",
    metadata,
    sa.Column("phone", sa.String(32), primary_key=True),
    sa.Column("last_sent_at", Timestamp, nullable=False),
)

# What each scheduled sync wrote downstream, one row per source item (CONTRACTS §5):
# a re-run, a retry or a backfill skips items already written and only retries a
# confirm that failed. ``first_seen_at`` also tells how long an item has been pending.
sync_ledger = sa.Table(
    "sync_ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("sync", sa.String(32), nullable=False),
    sa.Column("item_key", sa.String(128), nullable=False),
    # the day of operacao_financeiro's partition; null for the other syncs
    sa.Column("partition_key", sa.String(32), nullable=True),
    sa.Column("first_seen_at", Timestamp, nullable=False),
    sa.Column("written_at", Timestamp, nullable=True),
    sa.Column("downstream_id", sa.String(64), nullable=True),
    sa.Column("confirmed_at", Timestamp, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("sync", "item_key", name="uq_sync_ledger_sync_item"),
)
sa.Index("ix_sync_ledger_partition", sync_ledger.c.sync, sync_ledger.c.partition_key)

# Circuit breaker per destination, shared by every run process: after repeated
# failures actions to that destination fail fast (error class "unavailable") instead of
# holding run-queue slots through an outage.
breakers = sa.Table(
    "breakers",
    metadata,
    sa.Column("destination", sa.String(32), primary_key=True),
    # closed | open | half_open
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_started_at", Timestamp, nullable=True),
    sa.Column("opened_at", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# A destination paused by ops (a maintenance window): its actions wait in the ledger
# (status "paused") until it is resumed or ``until`` passes (destinations/pauses.py).
destination_pauses = sa.Table(
    "destination_pauses",
    metadata,
    sa.Column("destination", sa.String(32), primary_key=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("paused_at", Timestamp, nullable=False),
    sa.Column("paused_by", sa.String(64), nullable=False),
    sa.Column("until", Timestamp, nullable=True),
)

# The pacing of a rate-limited destination (Z-API): when its next call may go, as epoch
# seconds, moved forward atomically by every call that reserves a slot
# (destinations/limits.py).
destination_pace = sa.Table(
    "destination_pace",
    metadata,
    sa.Column("destination", sa.String(32), primary_key=True),
    sa.Column("next_at", sa.Float, nullable=False),
)

# One re-execution per DLQ item: the claim row is written before the launch, so two
# concurrent retries (or retry-all racing the automatic re-drive) never both launch.
dlq_replays = sa.Table(
    "dlq_replays",
    metadata,
    sa.Column("parent_run_id", sa.String(64), primary_key=True),
    sa.Column("child_run_id", sa.String(64), nullable=True),
    sa.Column("requested_at", Timestamp, nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
)

# Monitoring: one row per alert (a §7 metric, a queue's SLA, a sync, the WhatsApp
# instance). ``level`` is the escalation level last announced by e-mail (0 = none), so
# an alert is sent when a level is entered, never on every check, and a failed send is
# retried on the next check. ``condition_since`` is when the condition began (the
# 15-minute WhatsApp rule and the escalation to level 2 are measured from it).
monitoring_alerts = sa.Table(
    "monitoring_alerts",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("condition_since", Timestamp, nullable=True),
    sa.Column("level_since", Timestamp, nullable=True),
    sa.Column("last_ok_at", Timestamp, nullable=True),
    sa.Column("notified_at", Timestamp, nullable=True),
    sa.Column("summary", sa.String(500), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
)

