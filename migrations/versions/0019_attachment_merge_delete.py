"""Ticket attachments copied by a merge and deleted attachments:

- ``merged_from_ticket_id`` / ``merged_from_attachment_id``: the copy a merge makes on the primary
  (as comments' ``merged_from_*``; unique per target ticket, so a repeated merge step copies nothing
  twice). The bytes are not copied: both rows point at the same (account, sha256) content.
- ``deleted_at`` / ``deleted_by_user_id``: an attachment deleted through the API is hidden from the
  list and the download, kept as a record (the timeline names it; a Maverick document it came from
  is not imported again).

Its own branch off 0017 (``pulse migrate`` upgrades every head), like 0020.

Revision ID: 0019
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket_attachments", sa.Column("merged_from_ticket_id", sa.BigInteger(), nullable=True))
    op.add_column("ticket_attachments", sa.Column("merged_from_attachment_id", sa.BigInteger(), nullable=True))
    op.add_column("ticket_attachments", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("ticket_attachments", sa.Column("deleted_by_user_id", sa.BigInteger(), nullable=True))
    op.create_index("uq_ticket_attachments_merged_copy", "ticket_attachments",
                    ["ticket_id", "merged_from_attachment_id"], unique=True,
                    postgresql_where=sa.text("merged_from_attachment_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("uq_ticket_attachments_merged_copy", table_name="ticket_attachments")
    op.drop_column("ticket_attachments", "deleted_by_user_id")
    op.drop_column("ticket_attachments", "deleted_at")
    op.drop_column("ticket_attachments", "merged_from_attachment_id")
    op.drop_column("ticket_attachments", "merged_from_ticket_id")
