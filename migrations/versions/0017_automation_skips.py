"""Skipped automation evaluations: one row per write (the rules whose conditions did not hold,
with their condition results), not one row per rule. A PATCH evaluating 50 rules that do not
fire wrote 50 execution rows; one row with the rules' ids (GIN-indexed, so a rule's skips are
found) costs PostgreSQL about half as much per write (bench/automation.py, decisions). Its ids
come from the executions' sequence, so an execution's id is unique across both tables.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_skips",
        sa.Column("id", sa.BigInteger(), primary_key=True,
                  server_default=sa.text("nextval('automation_executions_id_seq'::regclass)")),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule_ids", ARRAY(sa.BigInteger()), nullable=False),
        # [{rule_id, trigger, condition_results, caused_by, depth, execution_time_ms}], in evaluation order
        sa.Column("skipped", JSONB(), nullable=False),
    )
    op.create_index("ix_automation_skips_rule_ids", "automation_skips", ["rule_ids"], postgresql_using="gin")
    op.execute("INSERT INTO automation_skips (id, account_id, ticket_id, executed_at, rule_ids, skipped) "
               "SELECT id, account_id, ticket_id, executed_at, ARRAY[rule_id], jsonb_build_array(jsonb_build_object("
               "'rule_id', rule_id, 'trigger', trigger, 'condition_results', condition_results, "
               "'caused_by', caused_by, 'depth', depth, 'execution_time_ms', execution_time_ms)) "
               "FROM automation_executions WHERE status = 'skipped'")
    op.execute("DELETE FROM automation_executions WHERE status = 'skipped'")


def downgrade() -> None:
    op.execute("INSERT INTO automation_executions (account_id, rule_id, ticket_id, trigger, status, conditions_matched, "
               "condition_results, caused_by, depth, executed_at, execution_time_ms) "
               "SELECT s.account_id, (x->>'rule_id')::bigint, s.ticket_id, x->>'trigger', 'skipped', false, "
               "x->'condition_results', x->'caused_by', (x->>'depth')::int, s.executed_at, "
               "(x->>'execution_time_ms')::float FROM automation_skips s, jsonb_array_elements(s.skipped) x")
    op.drop_table("automation_skips")
