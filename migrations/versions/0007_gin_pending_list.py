"""GIN indexes keep at most 512 kB of entries not yet merged

A GIN index takes new entries into a pending list (``fastupdate``) and merges them later, when the
list passes ``gin_pending_list_limit`` (4 MB by default) or at the next (auto)vacuum. Every search
through the index reads the whole list. A ticket write that is not HOT adds each of its document's
lexemes again (~150 per document, two documents), so 10,000 ticket writes left 51,500 pending
entries (339 pages) in each document index of the benchmark database, and every search — a rare
word included — paid ~5 ms to read them (bench/README.md). At 512 kB the list is read in under a
millisecond; the write that fills it merges it (every ~40 ticket writes).

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

GIN_INDEXES = ("ix_tickets_search", "ix_tickets_search_public", "ix_tickets_tags", "ix_tickets_custom_fields")


def upgrade() -> None:
    for name in GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} SET (gin_pending_list_limit = 512)")


def downgrade() -> None:
    for name in GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} RESET (gin_pending_list_limit)")
