"""Maverick tickets linked to Pulse tickets: one Pulse ticket id and number reserved per Maverick
ticket (so two syncs, or a sync and a webhook, never create it twice), with the remote version and
fields last applied

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maverick_ticket_links",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("maverick_ticket_id", sa.String(200), primary_key=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("remote_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True)),
        sa.Column("remote_fields", JSONB(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("maverick_ticket_links")
