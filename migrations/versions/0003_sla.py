"""SLA: business calendars, policies, the ticket event outbox, SLA indexes on tickets

Revision ID: 0003
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_calendars",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("holidays", postgresql.ARRAY(sa.Date()), server_default="{}", nullable=False),
        sa.Column("holiday_country", sa.String(length=8), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_sla_calendars_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_calendars")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_sla_calendars_account_id")),
    )
    op.create_index(op.f("ix_sla_calendars_account_id"), "sla_calendars", ["account_id"], unique=False)

    op.create_table(
        "sla_policies",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("at_risk_percent", sa.Integer(), server_default="80", nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=True),
        sa.Column("pause_statuses", postgresql.ARRAY(sa.String(length=32)), server_default="{waiting_customer}",
                  nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_sla_policies_account_id_accounts")),
        sa.ForeignKeyConstraint(["calendar_id"], ["sla_calendars.id"],
                                name=op.f("fk_sla_policies_calendar_id_sla_calendars")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    op.create_index("uq_sla_policies_account_priority", "sla_policies", ["account_id", "priority"], unique=True,
                    postgresql_where=sa.text("conditions IS NULL"))
    op.create_index("ix_sla_policies_account_position", "sla_policies", ["account_id", "position", "id"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ticket_events_account_id_accounts")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "id"])
    op.create_index("ix_ticket_events_account_type", "ticket_events", ["account_id", "event_type", "id"])

    op.create_index("ix_tickets_account_sla_status", "tickets", ["account_id", "sla_status"],
                    postgresql_where=sa.text("deleted_at IS NULL"))
    op.create_index(
        "ix_tickets_sla_compliance", "tickets", ["account_id", "created_at"],
        postgresql_include=["priority", "assigned_to_team_id", "sla_first_response_met", "sla_resolution_met",
                            "first_response_time", "resolution_time"],
        postgresql_where=sa.text("deleted_at IS NULL AND sla_policy_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_sla_compliance", table_name="tickets")
    op.drop_index("ix_tickets_account_sla_status", table_name="tickets")
    op.drop_index("ix_ticket_events_account_type", table_name="ticket_events")
    op.drop_index("ix_ticket_events_ticket", table_name="ticket_events")
    op.drop_table("ticket_events")
    op.drop_index("ix_sla_policies_account_position", table_name="sla_policies")
    op.drop_index("uq_sla_policies_account_priority", table_name="sla_policies")
    op.drop_table("sla_policies")
    op.drop_index(op.f("ix_sla_calendars_account_id"), table_name="sla_calendars")
    op.drop_table("sla_calendars")
