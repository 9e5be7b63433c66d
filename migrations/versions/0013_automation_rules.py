"""Automation rules and the audit trail of their evaluations; tickets remember when they entered
their status (``time_in_status`` rules count from it)

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("status_changed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE tickets SET status_changed_at = CASE status WHEN 'resolved' THEN resolved_at "
               "WHEN 'closed' THEN closed_at ELSE updated_at END")  # not known before: never earlier than it was
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("trigger_config", JSONB()),
        sa.Column("conditions", JSONB(), server_default="[]", nullable=False),
        sa.Column("conditions_match", sa.String(8), server_default="all", nullable=False),
        sa.Column("actions", JSONB(), server_default="[]", nullable=False),
        sa.Column("execution_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_automation_rules_account", "automation_rules", ["account_id", "execution_order", "id"])
    # Every write evaluating 50 rules inserts 50 rows here: no foreign keys (their checks were most
    # of what the rows cost PostgreSQL in bench/automation.py; tickets are only soft-deleted,
    # accounts never) and one index, by rule (what the API reads by).
    op.create_table(
        "automation_executions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # success, failed, skipped, loop_stopped
        sa.Column("conditions_matched", sa.Boolean(), nullable=False),
        sa.Column("condition_results", JSONB(), server_default="[]", nullable=False),
        sa.Column("actions_performed", JSONB(), server_default="[]", nullable=False),
        sa.Column("before_values", JSONB(), server_default="{}", nullable=False),
        sa.Column("after_values", JSONB(), server_default="{}", nullable=False),
        sa.Column("error_message", sa.Text()),
        sa.Column("caused_by", JSONB(), nullable=False),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("execution_time_ms", sa.Float(), server_default="0", nullable=False),
    )
    op.create_index("ix_automation_executions_rule", "automation_executions", ["rule_id", "executed_at", "id"])


def downgrade() -> None:
    op.drop_table("automation_executions")
    op.drop_table("automation_rules")
    op.drop_column("tickets", "status_changed_at")
