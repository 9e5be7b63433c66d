"""Maverick integration: each account's config (secrets encrypted), category mappings, received
webhook events (deduplicated by event id), sync runs; ticket attachments with their content by hash

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "maverick_configs",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("api_url", sa.String(2000)),
        sa.Column("api_key_encrypted", sa.Text()),
        sa.Column("webhook_secret_encrypted", sa.Text()),
        sa.Column("auto_sync", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sync_interval_minutes", sa.Integer(), server_default="15", nullable=False),
        sa.Column("sync_direction", sa.String(16), server_default="bidirectional", nullable=False),
        sa.Column("default_assignee_id", sa.BigInteger()),
        sa.Column("default_team_id", sa.BigInteger()),
        sa.Column("sync_internal_notes", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("status_mapping", JSONB(), server_default="{}", nullable=False),
        sa.Column("sync_cursor", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_table(
        "maverick_category_mappings",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("maverick_category_id", sa.BigInteger(), nullable=False),
        sa.Column("maverick_category_name", sa.String(200)),
        sa.Column("pulse_ticket_type_id", sa.BigInteger(), sa.ForeignKey("ticket_types.id")),
        sa.Column("pulse_category_id", sa.BigInteger(), sa.ForeignKey("ticket_categories.id")),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("account_id", "maverick_category_id",
                            name="uq_maverick_category_mappings_account_category"),
    )
    op.create_table(
        "maverick_webhook_events",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("data", JSONB(), server_default="{}", nullable=False),
        sa.Column("deliveries", sa.Integer(), server_default="1", nullable=False),
        _timestamp("received_at"),
        _timestamp("processed_at", nullable=True),
    )
    op.create_table(
        "maverick_sync_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("pulled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pushed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", JSONB(), server_default="[]", nullable=False),
        sa.Column("errors", JSONB(), server_default="[]", nullable=False),
    )
    op.create_index("ix_maverick_sync_runs_account", "maverick_sync_runs", ["account_id", sa.text("id DESC")])
    op.create_table(
        "attachment_contents",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        _timestamp("created_at"),
    )
    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), server_default="pulse", nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("created_by_user_id", sa.BigInteger()),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["account_id", "sha256"], ["attachment_contents.account_id", "attachment_contents.sha256"],
                                name="fk_ticket_attachments_content"),
    )
    op.create_index("ix_ticket_attachments_ticket", "ticket_attachments", ["ticket_id", "id"])
    # A document moves once: one attachment per (ticket, Maverick document).
    op.create_index("uq_ticket_attachments_external", "ticket_attachments", ["ticket_id", "external_id"],
                    unique=True, postgresql_where=sa.text("external_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_table("ticket_attachments")
    op.drop_table("attachment_contents")
    op.drop_table("maverick_sync_runs")
    op.drop_table("maverick_webhook_events")
    op.drop_table("maverick_category_mappings")
    op.drop_table("maverick_configs")
