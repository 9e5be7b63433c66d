"""search documents: the planner counts their lexemes ten times as finely

Statistics target 1000 on both documents: ANALYZE keeps the 10,000 most common lexemes instead
of 1,000, so the planner's guess of how many tickets hold a word or a prefix — which chooses the
search plan, see ``pulse.repositories.ticket_lists`` — is within ~1.5× instead of 2–20× off (a
prefix whose lexemes are not among the most common is guessed from the rarest tracked one). An
ANALYZE of 1,000,000 tickets takes ~15 s instead of ~3 s.

Tried and not kept: ``toast_tuple_target = 8160`` to keep the documents in the row (a ticket
tested one by one during a search costs 1.1 µs instead of 2.5 µs when the pages are in memory):
the heap grew from 1.2 GB to 3.6 GB at 1,000,000 tickets, no longer fitted in 4 GB of shared
buffers next to the indexes, and filtered lists and counts got 2–3× slower (bench/README.md).

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tickets ALTER COLUMN search_vector SET STATISTICS 1000, "
               "ALTER COLUMN search_public SET STATISTICS 1000")
    op.execute("ANALYZE tickets")


def downgrade() -> None:
    op.execute("ALTER TABLE tickets ALTER COLUMN search_vector SET STATISTICS -1, "
               "ALTER COLUMN search_public SET STATISTICS -1")
