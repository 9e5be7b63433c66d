"""tickets by status, most recently updated first

"Tickets waiting on the customer, by last update" (and a search within them) walked the account's
(updated_at) index and tested every ticket's status: at 1,000,000 tickets up to ~80 ms for a list,
~60 ms for a search. With (account, status, updated_at DESC, id DESC) only that status is read.
updated_at is indexed already, so ticket updates were not HOT before and this costs one more
index entry per write.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Built CONCURRENTLY (outside the migration's transaction): ticket writes go on meanwhile.
    with op.get_context().autocommit_block():
        op.create_index("ix_tickets_account_status_updated", "tickets",
                        ["account_id", "status", sa.literal_column("updated_at DESC"), sa.literal_column("id DESC")],
                        postgresql_where=sa.text("deleted_at IS NULL"), postgresql_concurrently=True,
                        if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_tickets_account_status_updated", table_name="tickets", postgresql_concurrently=True, if_exists=True)
