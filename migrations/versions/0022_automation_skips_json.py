"""Skipped automation evaluations: ``skipped`` as ``json``, not ``jsonb``, and a row holds each
rule at most once.

``json``: a PATCH evaluating 50 rules that do not fire stores a 13.5 KB array; PostgreSQL parsed
it into ``jsonb`` for ~0.45 ms of a write's CPU, where ``json`` only checks it (~0.25 ms). The row
is read back only to list one rule's evaluations (``json_to_recordset``), never queried inside.

Each rule once per row: a rule skipped twice in one write (a cascade reaching it again) shared
the row's id in ``GET …/executions``; a write now stores its n-th skip of a rule in its n-th row.
Rows stored before are split the same way (the later rows get new ids from the sequence).

Revision ID: 0022
Revises: 0021
"""
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TEMPORARY TABLE skips_split ON COMMIT DROP AS
        SELECT s.id, s.account_id, s.ticket_id, s.executed_at, x.ord, x.entry,
               row_number() OVER (PARTITION BY s.id, x.entry->>'rule_id' ORDER BY x.ord) AS occurrence
          FROM automation_skips s, jsonb_array_elements(s.skipped) WITH ORDINALITY AS x(entry, ord)
         WHERE cardinality(s.rule_ids) > (SELECT count(DISTINCT r) FROM unnest(s.rule_ids) AS r)""")
    op.execute("""
        INSERT INTO automation_skips (account_id, ticket_id, executed_at, rule_ids, skipped)
        SELECT account_id, ticket_id, executed_at, array_agg(CAST(entry->>'rule_id' AS bigint) ORDER BY ord),
               jsonb_agg(entry ORDER BY ord)
          FROM skips_split WHERE occurrence > 1
         GROUP BY id, account_id, ticket_id, executed_at, occurrence ORDER BY id, occurrence""")
    op.execute("""
        UPDATE automation_skips s SET rule_ids = f.rule_ids, skipped = f.skipped
          FROM (SELECT id, array_agg(CAST(entry->>'rule_id' AS bigint) ORDER BY ord) AS rule_ids,
                       jsonb_agg(entry ORDER BY ord) AS skipped
                  FROM skips_split WHERE occurrence = 1 GROUP BY id) f
         WHERE s.id = f.id""")
    op.execute("DROP TABLE skips_split")
    op.execute("ALTER TABLE automation_skips ALTER COLUMN skipped TYPE json USING skipped::json")


def downgrade() -> None:
    op.execute("ALTER TABLE automation_skips ALTER COLUMN skipped TYPE jsonb USING skipped::jsonb")
