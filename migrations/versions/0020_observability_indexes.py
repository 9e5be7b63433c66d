"""Observability (issue 14): the support-lead gauges of ``/metrics`` read two partial indexes, so
a scrape costs in proportion to open tickets and failing deliveries, not to every ticket and
delivery ever stored (pulse.repositories.operations).

Its own branch off 0017 (``pulse migrate`` upgrades every head), so it does not depend on the
order in which the other changes of this round land.

Revision ID: 0020
Revises: 0017
"""
from alembic import op
from sqlalchemy import text

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_open_sla_status", "tickets", ["account_id", "sla_status"],
                    postgresql_where=text("deleted_at IS NULL AND status NOT IN ('resolved', 'closed')"))
    op.create_index("ix_notification_deliveries_failed", "notification_deliveries",
                    ["account_id", "channel", "retryable"], postgresql_where=text("status = 'failed'"))


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_failed", table_name="notification_deliveries")
    op.drop_index("ix_tickets_open_sla_status", table_name="tickets")
