"""Event store: events, WhatsApp message statuses, WhatsApp connection callbacks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("available_at", Timestamp, nullable=False),
        sa.Column("filtered_reason", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("dispatched_at", Timestamp, nullable=True),
        sa.Column("payload_purged_at", Timestamp, nullable=True),
        sa.UniqueConstraint("source", "idempotency_key", name="uq_events_source_idempotency_key"),
    )
    op.create_index("ix_events_pending", "events", ["run_id", "available_at"])
    op.create_index("ix_events_type_received", "events", ["event_type", "received_at"])
    op.create_table(
        "whatsapp_message_status",
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "whatsapp_connection",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("connected", sa.Boolean, nullable=False),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_connection")
    op.drop_table("whatsapp_message_status")
    op.drop_index("ix_events_type_received", "events")
    op.drop_index("ix_events_pending", "events")
    op.drop_table("events")
