"""search: a public document of its own; team / assignee queues in index order

Measured at 1,000,000 tickets: restricting the one document to weights A–C for callers without
writeSupport made PostgreSQL re-read (de-TOAST) the document of every GIN match — 4.5× the
buffers of an unrestricted search. So:

- ``tickets.search_public``: subject (A), description (B), public comments (C) — what callers
  without writeSupport search, with its own GIN index; ``search_vector`` stays the document
  with internal notes (D) for writeSupport callers. Neither query needs a weight recheck.
- ``(account_id, assigned_to_team_id, created_at DESC, id DESC)`` and the same for the assignee
  replace the two-column team / assignee indexes: a team's or an agent's queue, newest first
  (the default order), and its deep pages are a straight index walk.

Revision ID: 0002b
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002b"
down_revision = "0002"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")

BACKFILL = """
UPDATE tickets AS t SET search_public = pulse_tsvector_append(
    pulse_tsvector_append(pulse_search_part(t.subject, 'A'), pulse_search_part(t.description, 'B')),
    (SELECT pulse_tsvector_agg(pulse_search_part(c.body, 'C') ORDER BY c.created_at, c.id)
       FROM ticket_comments AS c WHERE c.ticket_id = t.id AND NOT c.is_internal))
"""


def upgrade() -> None:
    op.add_column("tickets", sa.Column("search_public", postgresql.TSVECTOR(),
                                       server_default=sa.text("''::tsvector"), nullable=False))
    op.execute(BACKFILL)
    op.create_index("ix_tickets_search_public", "tickets", ["search_public"], postgresql_using="gin",
                    postgresql_where=LIVE)
    op.drop_index("ix_tickets_account_team", table_name="tickets", postgresql_where=LIVE)
    op.drop_index("ix_tickets_account_user", table_name="tickets", postgresql_where=LIVE)
    op.create_index("ix_tickets_account_team_created", "tickets",
                    ["account_id", "assigned_to_team_id", sa.literal_column("created_at DESC"),
                     sa.literal_column("id DESC")], postgresql_where=LIVE)
    op.create_index("ix_tickets_account_user_created", "tickets",
                    ["account_id", "assigned_to_user_id", sa.literal_column("created_at DESC"),
                     sa.literal_column("id DESC")], postgresql_where=LIVE)


def downgrade() -> None:
    op.drop_index("ix_tickets_account_user_created", table_name="tickets")
    op.drop_index("ix_tickets_account_team_created", table_name="tickets")
    op.create_index("ix_tickets_account_user", "tickets", ["account_id", "assigned_to_user_id"], postgresql_where=LIVE)
    op.create_index("ix_tickets_account_team", "tickets", ["account_id", "assigned_to_team_id"], postgresql_where=LIVE)
    op.drop_index("ix_tickets_search_public", table_name="tickets")
    op.drop_column("tickets", "search_public")
