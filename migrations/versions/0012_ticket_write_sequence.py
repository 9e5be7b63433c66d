"""Tickets count their writes (the engine tells a replayed outcome from news by it) and remember
when they were last reopened (the start of the current SLA cycle)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("write_sequence", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("tickets", sa.Column("last_reopened_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("tickets", "last_reopened_at")
    op.drop_column("tickets", "write_sequence")
