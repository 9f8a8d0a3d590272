"""Keyed hashes of each event's phone, e-mail and CPF (search and erasure by person).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_person_keys",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "kind", "digest", name="pk_event_person_keys"),
    )
    op.create_index("ix_event_person_keys_digest", "event_person_keys", ["kind", "digest"])


def downgrade() -> None:
    op.drop_index("ix_event_person_keys_digest", table_name="event_person_keys")
    op.drop_table("event_person_keys")
