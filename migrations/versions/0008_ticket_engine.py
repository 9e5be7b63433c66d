"""The ticket engine: SLA clocks in the database, outbox deliveries, in-app notifications, the
rules generation and agenda probes

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("rules_generation", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("idempotency_keys", sa.Column("resource_number", sa.Integer()))
    op.create_table(
        "ticket_sla_clocks",
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), primary_key=True),
        sa.Column("ledger", JSONB(), nullable=False),
    )
    op.create_table(
        "outbox_deliveries",
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("ticket_events.id"), primary_key=True),
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger()),
        sa.Column("event_id", sa.BigInteger()),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("body", sa.Text()),
        sa.Column("data", JSONB(), server_default="{}", nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.UniqueConstraint("event_id", "user_id", "kind", name="uq_notifications_event_user_kind"),
    )
    op.create_index("ix_notifications_user", "notifications", ["account_id", "user_id", "id"])
    op.create_table(
        "agenda_probes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("after_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_agenda_probes_account_id", "agenda_probes", ["account_id"])


def downgrade() -> None:
    op.drop_table("agenda_probes")
    op.drop_table("notifications")
    op.drop_table("outbox_deliveries")
    op.drop_table("ticket_sla_clocks")
    op.drop_column("idempotency_keys", "resource_number")
    op.drop_column("accounts", "rules_generation")
