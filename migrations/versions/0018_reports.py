"""Reports (issue 14): the ticket-volume rollup and the indexes the reports read.

- ``ticket_report_slots``: per account and 15-minute UTC slot, the tickets created, resolutions,
  reopens, closes and the change in backlog (``pulse.domain.reports``). Written in each ticket
  write's transaction (``TicketStore.add_events``); filled here from the timeline, which holds
  every ticket's creation status and status changes. Deleted tickets count nowhere.
- ``ix_tickets_report``: tickets by creation with what the summary and filtered reports read
  (index-only scans).
- ``ix_tickets_status_changed``: tickets whose status changed since an instant (a filtered
  report's backlog at its start).
- ``ix_ticket_timeline_status``: status changes by account and time (filtered reports).

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Kept in step with pulse.repositories.reports.REBUILD_SQL (a migration stays as it was written).
BACKFILL = """
INSERT INTO ticket_report_slots (account_id, slot, created, resolved, reopened, closed, backlog_change)
SELECT account_id, date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00') AS slot,
       sum(created), sum(resolved), sum(reopened), sum(closed), sum(backlog_change)
  FROM (
    SELECT t.account_id, t.created_at AS at, 1 AS created,
           (s.status = 'resolved')::int AS resolved, 0 AS reopened, (s.status = 'closed')::int AS closed,
           (s.status NOT IN ('resolved', 'closed'))::int AS backlog_change
      FROM tickets t
      CROSS JOIN LATERAL (
        SELECT coalesce((SELECT e.data->>'status' FROM ticket_timeline e
                          WHERE e.ticket_id = t.id AND e.event_type = 'ticket_created' ORDER BY e.id LIMIT 1),
                        'open') AS status) s
     WHERE t.deleted_at IS NULL
    UNION ALL
    SELECT e.account_id, e.created_at,
           0,
           (f <> 'resolved' AND x = 'resolved')::int,
           (f = 'resolved' AND x NOT IN ('resolved', 'closed'))::int,
           (f <> 'closed' AND x = 'closed')::int,
           CASE WHEN f NOT IN ('resolved', 'closed') AND x IN ('resolved', 'closed') THEN -1
                WHEN f IN ('resolved', 'closed') AND x NOT IN ('resolved', 'closed') THEN 1 ELSE 0 END
      FROM ticket_timeline e
      JOIN tickets t ON t.id = e.ticket_id AND t.deleted_at IS NULL
      CROSS JOIN LATERAL (SELECT e.from_value #>> '{}' AS f, e.to_value #>> '{}' AS x) v
     WHERE e.event_type = 'status_changed'
  ) marks
 GROUP BY account_id, slot
"""


def upgrade() -> None:
    op.create_table(
        "ticket_report_slots",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("slot", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("resolved", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reopened", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("closed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("backlog_change", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(BACKFILL)
    op.create_index("ix_tickets_report", "tickets", ["account_id", "created_at"],
                    postgresql_include=["priority", "assigned_to_team_id", "type_id", "category_id",
                                        "sla_first_response_met", "sla_resolution_met", "first_response_time",
                                        "resolution_time", "escalation_count"],
                    postgresql_where=sa.text("deleted_at IS NULL"))
    op.create_index("ix_tickets_status_changed", "tickets", ["account_id", "status_changed_at"],
                    postgresql_include=["status", "created_at", "priority", "assigned_to_team_id", "type_id"],
                    postgresql_where=sa.text("deleted_at IS NULL"))
    op.create_index("ix_ticket_timeline_status", "ticket_timeline", ["account_id", "created_at"],
                    postgresql_include=["ticket_id"], postgresql_where=sa.text("event_type = 'status_changed'"))


def downgrade() -> None:
    op.drop_index("ix_ticket_timeline_status", table_name="ticket_timeline")
    op.drop_index("ix_tickets_status_changed", table_name="tickets")
    op.drop_index("ix_tickets_report", table_name="tickets")
    op.drop_table("ticket_report_slots")
