"""Reports at a million tickets (issue 14): two more rollups, so a report reads hundreds of rows.

- ``ticket_report_days``: the volume rollup's sums per UTC day, written with the 15-minute slots
  (``ReportRollup.add``). A report's backlog at its start sums the days before it (and the slots of
  the day it starts in) instead of every slot since the account began; a report cut on UTC days
  reads days only.
- ``ticket_summary_days``: the summary's figures of the tickets created on a UTC day, in total and
  per priority, team and category (``pulse.domain.reports.summary_marks``), written in each ticket
  write's transaction when a ticket's figures change.

Both are filled here from what is stored. Joins the three heads of 0018, 0019 and 0020.

Revision ID: 0021
Revises: 0018, 0019, 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = ("0018", "0019", "0020")
branch_labels = None
depends_on = None

_COUNTS = ("created", "resolved", "reopened", "closed", "backlog_change")
_SUMMARY = ("tickets", "escalated", "first_response_met", "first_response_breached", "resolution_met",
            "resolution_breached", "first_response_minutes", "first_responses", "resolution_minutes", "resolutions")

# Kept in step with pulse.repositories.reports (a migration stays as it was written).
DAYS_BACKFILL = """
INSERT INTO ticket_report_days (account_id, day, created, resolved, reopened, closed, backlog_change)
SELECT account_id, date_bin('1 day', slot, timestamptz '2000-01-01 00:00:00+00'),
       sum(created), sum(resolved), sum(reopened), sum(closed), sum(backlog_change)
  FROM ticket_report_slots GROUP BY 1, 2
"""
SUMMARY_BACKFILL = """
INSERT INTO ticket_summary_days (account_id, created_on, dimension, value, tickets, escalated, first_response_met,
                                 first_response_breached, resolution_met, resolution_breached, first_response_minutes,
                                 first_responses, resolution_minutes, resolutions)
SELECT account_id, (created_at AT TIME ZONE 'UTC')::date,
       CASE WHEN grouping(priority) = 0 THEN 'priority' WHEN grouping(assigned_to_team_id) = 0 THEN 'team'
            WHEN grouping(category_id) = 0 THEN 'category' ELSE 'total' END,
       CASE WHEN grouping(priority) = 0 THEN priority
            WHEN grouping(assigned_to_team_id) = 0 THEN coalesce(assigned_to_team_id::text, '')
            WHEN grouping(category_id) = 0 THEN coalesce(category_id::text, '') ELSE '' END,
       count(*), count(*) FILTER (WHERE escalation_count > 0),
       count(*) FILTER (WHERE sla_first_response_met), count(*) FILTER (WHERE NOT sla_first_response_met),
       count(*) FILTER (WHERE sla_resolution_met), count(*) FILTER (WHERE NOT sla_resolution_met),
       coalesce(sum(first_response_time), 0), count(first_response_time),
       coalesce(sum(resolution_time), 0), count(resolution_time)
  FROM tickets WHERE deleted_at IS NULL
 GROUP BY account_id, (created_at AT TIME ZONE 'UTC')::date,
          GROUPING SETS ((), (priority), (assigned_to_team_id), (category_id))
"""


def upgrade() -> None:
    op.create_table(
        "ticket_report_days",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in _COUNTS),
    )
    op.create_table(
        "ticket_summary_days",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("created_on", sa.Date(), primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(32), primary_key=True),
        *(sa.Column(name, sa.BigInteger() if name.endswith("_minutes") else sa.Integer(), nullable=False,
                    server_default="0") for name in _SUMMARY),
    )
    op.execute(DAYS_BACKFILL)
    op.execute(SUMMARY_BACKFILL)


def downgrade() -> None:
    op.drop_table("ticket_summary_days")
    op.drop_table("ticket_report_days")
