"""Sync ledger: what each scheduled sync wrote downstream, per source item.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_ledger",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sync", sa.String(32), nullable=False),
        sa.Column("item_key", sa.String(128), nullable=False),
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
    op.create_index("ix_sync_ledger_partition", "sync_ledger", ["sync", "partition_key"])


def downgrade() -> None:
    op.drop_index("ix_sync_ledger_partition", table_name="sync_ledger")
    op.drop_table("sync_ledger")
