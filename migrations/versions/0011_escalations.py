"""Escalation rules and the tickets' escalation history

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation_rules",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("conditions", JSONB(), server_default="[]", nullable=False),
        sa.Column("when", JSONB(), nullable=False),
        sa.Column("escalate_to", sa.String(32), nullable=False),
        sa.Column("escalate_to_user_id", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("escalate_to_team_id", sa.BigInteger(), sa.ForeignKey("teams.id")),
        sa.Column("escalate_to_rotation_id", sa.BigInteger()),
        sa.Column("reassign", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("notification_channels", ARRAY(sa.String(16)), server_default="{in_app}", nullable=False),
        sa.Column("business_hours_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("add_internal_note", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("internal_note_template", sa.Text()),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_escalation_rules_account", "escalation_rules", ["account_id", "priority", "level", "id"])
    op.create_table(
        "ticket_escalations",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("threshold_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalate_to", sa.String(32), nullable=False),
        sa.Column("target_user_ids", ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("target_team_id", sa.BigInteger()),
        sa.Column("reassigned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("channels", ARRAY(sa.String(16)), server_default="{}", nullable=False),
    )
    op.create_index("ix_ticket_escalations_ticket", "ticket_escalations", ["ticket_id", "id"])
    op.create_index("ix_ticket_escalations_rule", "ticket_escalations", ["rule_id", "escalated_at"])


def downgrade() -> None:
    op.drop_table("ticket_escalations")
    op.drop_table("escalation_rules")
