"""search, filters at scale, saved views, bulk operations, merge copies

- ``tickets.search_vector``: one tsvector per ticket — subject (weight A), description (B), public
  comments (C), internal notes (D) — with a GIN index. Callers without writeSupport search with
  a query restricted to weights A–C, so internal notes never match for them (one vector, one
  index, instead of a public and an all vector).
- ``pulse_search_part`` / ``pulse_tsvector_append`` / ``pulse_tsvector_agg``: build that
  vector without ever failing a write: a tsvector is capped at 1 MB, and a part that would
  overflow it is left out of the index instead of raising.
- Indexes for the list filters and sorts: custom fields (GIN jsonb_path_ops), tags (GIN),
  external source/id, priority and updated-at orderings.
- ``ticket_comments.merged_from_*``: copies made by a merge (unique per target ticket, so a
  retried merge never copies twice).
- ``saved_views``, ``bulk_operations``, ``bulk_operation_items``.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")

FUNCTIONS = """
CREATE OR REPLACE FUNCTION pulse_search_part(body text, weight "char") RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN setweight(to_tsvector('english'::regconfig, left(coalesce(body, ''), 200000)), weight);
EXCEPTION WHEN program_limit_exceeded THEN
    RETURN ''::tsvector;
END $$;

CREATE OR REPLACE FUNCTION pulse_tsvector_append(document tsvector, part tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN coalesce(document, ''::tsvector) || coalesce(part, ''::tsvector);
EXCEPTION WHEN program_limit_exceeded THEN
    RETURN coalesce(document, ''::tsvector);
END $$;

CREATE AGGREGATE pulse_tsvector_agg(tsvector) (
    SFUNC = pulse_tsvector_append, STYPE = tsvector, INITCOND = ''
);
"""

BACKFILL = """
UPDATE tickets AS t SET search_vector = pulse_tsvector_append(
    pulse_tsvector_append(pulse_search_part(t.subject, 'A'), pulse_search_part(t.description, 'B')),
    (SELECT pulse_tsvector_agg(
                pulse_search_part(c.body, (CASE WHEN c.is_internal THEN 'D' ELSE 'C' END)::"char")
                ORDER BY c.created_at, c.id)
       FROM ticket_comments AS c WHERE c.ticket_id = t.id))
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.add_column("tickets", sa.Column("search_vector", postgresql.TSVECTOR(),
                                       server_default=sa.text("''::tsvector"), nullable=False))
    op.execute(BACKFILL)
    op.create_index("ix_tickets_search", "tickets", ["search_vector"], postgresql_using="gin",
                    postgresql_where=LIVE)
    op.create_index("ix_tickets_custom_fields", "tickets", ["custom_fields"], postgresql_using="gin",
                    postgresql_ops={"custom_fields": "jsonb_path_ops"}, postgresql_where=LIVE)
    op.create_index("ix_tickets_tags", "tickets", ["tags"], postgresql_using="gin", postgresql_where=LIVE)
    op.create_index("ix_tickets_account_external", "tickets",
                    ["account_id", "external_source", "external_ticket_id"], postgresql_where=LIVE)
    op.create_index("ix_tickets_account_priority", "tickets",
                    ["account_id", sa.literal_column("priority_rank DESC"), sa.literal_column("created_at DESC"),
                     sa.literal_column("id DESC")], postgresql_where=LIVE)
    op.create_index("ix_tickets_account_updated", "tickets",
                    ["account_id", sa.literal_column("updated_at DESC"), sa.literal_column("id DESC")],
                    postgresql_where=LIVE)

    op.add_column("ticket_comments", sa.Column("merged_from_ticket_id", sa.BigInteger(), nullable=True))
    op.add_column("ticket_comments", sa.Column("merged_from_comment_id", sa.BigInteger(), nullable=True))
    op.create_index("uq_ticket_comments_merged_copy", "ticket_comments", ["ticket_id", "merged_from_comment_id"],
                    unique=True, postgresql_where=sa.text("merged_from_comment_id IS NOT NULL"))

    op.create_table(
        "saved_views",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("sort", sa.String(length=500), nullable=True),
        sa.Column("shared", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_saved_views_account_id_accounts")),
        sa.ForeignKeyConstraint(["owner_user_id"], ["users.id"], name=op.f("fk_saved_views_owner_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
    )
    op.create_index("ix_saved_views_account_owner", "saved_views", ["account_id", "owner_user_id"])
    op.create_index("ix_saved_views_account_shared", "saved_views", ["account_id"], postgresql_where=sa.text("shared"))

    op.create_table(
        "bulk_operations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("filter", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_bulk_operations_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_operations")),
    )
    op.create_index("ix_bulk_operations_account", "bulk_operations", ["account_id", "id"])
    op.create_table(
        "bulk_operation_items",
        sa.Column("bulk_operation_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["bulk_operation_id"], ["bulk_operations.id"], ondelete="CASCADE",
                                name=op.f("fk_bulk_operation_items_bulk_operation_id_bulk_operations")),
        sa.PrimaryKeyConstraint("bulk_operation_id", "position", name=op.f("pk_bulk_operation_items")),
    )
    op.create_index("ix_bulk_operation_items_status", "bulk_operation_items", ["bulk_operation_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_bulk_operation_items_status", table_name="bulk_operation_items")
    op.drop_table("bulk_operation_items")
    op.drop_index("ix_bulk_operations_account", table_name="bulk_operations")
    op.drop_table("bulk_operations")
    op.drop_index("ix_saved_views_account_shared", table_name="saved_views")
    op.drop_index("ix_saved_views_account_owner", table_name="saved_views")
    op.drop_table("saved_views")
    op.drop_index("uq_ticket_comments_merged_copy", table_name="ticket_comments")
    op.drop_column("ticket_comments", "merged_from_comment_id")
    op.drop_column("ticket_comments", "merged_from_ticket_id")
    for name in ("ix_tickets_account_updated", "ix_tickets_account_priority", "ix_tickets_account_external",
                 "ix_tickets_tags", "ix_tickets_custom_fields", "ix_tickets_search"):
        op.drop_index(name, table_name="tickets")
    op.drop_column("tickets", "search_vector")
    op.execute("DROP AGGREGATE IF EXISTS pulse_tsvector_agg(tsvector)")
    op.execute("DROP FUNCTION IF EXISTS pulse_tsvector_append(tsvector, tsvector)")
    op.execute('DROP FUNCTION IF EXISTS pulse_search_part(text, "char")')
