"""Circuit breakers per destination and the DLQ replay claims.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("destination", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_started_at", Timestamp, nullable=True),
        sa.Column("opened_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "dlq_replays",
        sa.Column("parent_run_id", sa.String(64), primary_key=True),
        sa.Column("child_run_id", sa.String(64), nullable=True),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dlq_replays")
    op.drop_table("breakers")
