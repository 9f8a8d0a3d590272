"""Fan-out bookkeeping: the per-action ledger, the WhatsApp outbox, the auto-reply guard.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_actions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error_class", sa.String(16), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("event_id", "action", name="uq_event_actions_event_action"),
    )
    op.create_table(
        "whatsapp_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.UniqueConstraint("event_id", "action", name="uq_whatsapp_outbox_event_action"),
    )
    op.create_index("ix_whatsapp_outbox_status", "whatsapp_outbox", ["status", "id"])
    op.create_index("ix_whatsapp_outbox_message_id", "whatsapp_outbox", ["message_id"])
    op.create_table(
        "auto_reply_guard",
        sa.Column("phone", sa.String(32), primary_key=True),
        sa.Column("last_sent_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auto_reply_guard")
    op.drop_index("ix_whatsapp_outbox_message_id", "whatsapp_outbox")
    op.drop_index("ix_whatsapp_outbox_status", "whatsapp_outbox")
    op.drop_table("whatsapp_outbox")
    op.drop_table("event_actions")
