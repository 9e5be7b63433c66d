"""Notifications: each account's channel settings, the record of every delivery attempt, and a
trigger that publishes each new in-app notification on the ``pulse_notifications`` channel in
the inserting transaction (so listeners hear of it exactly when it commits)

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("email", JSONB()),
        sa.Column("sms", JSONB()),
        sa.Column("slack", JSONB()),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger()),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("ticket_events.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retryable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("event_id", "channel", "target", name="uq_notification_deliveries_event_channel_target"),
    )
    op.create_index("ix_notification_deliveries_account", "notification_deliveries",
                    ["account_id", sa.text("id DESC")])
    op.create_index("ix_notification_deliveries_ticket", "notification_deliveries",
                    ["account_id", "ticket_id", sa.text("id DESC")])
    # Every API process LISTENs on pulse_notifications and fans out to its own SSE subscribers
    # (pulse.notifications.stream). The payload names the row; a listener with a subscriber for
    # that user reads it (a notification's body may exceed NOTIFY's 8,000-byte payload limit).
    op.execute("""
        CREATE FUNCTION pulse_publish_notification() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('pulse_notifications', json_build_object(
                'id', NEW.id, 'accountId', NEW.account_id, 'userId', NEW.user_id)::text);
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER notifications_publish AFTER INSERT ON notifications
        FOR EACH ROW EXECUTE FUNCTION pulse_publish_notification()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS notifications_publish ON notifications")
    op.execute("DROP FUNCTION IF EXISTS pulse_publish_notification()")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_settings")
