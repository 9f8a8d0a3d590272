"""Monitoring: the state of each alert (level announced, since when), so an alert is
e-mailed once per level and its recovery once.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_alerts",
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


def downgrade() -> None:
    op.drop_table("monitoring_alerts")
