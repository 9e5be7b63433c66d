"""Report queries (spec §7): the ticket-volume rollup (written in each ticket write's transaction,
read by unfiltered reports), the same figures from the tickets and their timeline (filtered
reports, and ranges not cut on the rollup's 15-minute slots), and the summary's aggregates.

Both ways count by ``pulse.domain.reports``: a ticket's creation (``ticket_created``, with the
status it was created in) and each ``status_changed`` of its timeline is a mark; deleted tickets
count nowhere. The tests hold the two ways to the same figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.domain.reports import COUNTS, Marks, StatusMark
from pulse.models.reports import TicketReportSlot

# The whole rollup of one account, from its tickets' timelines (the bench's load; migration 0018
# holds the same statement for every account).
REBUILD_SQL = """
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
     WHERE t.deleted_at IS NULL AND t.account_id = :account_id
    UNION ALL
    SELECT e.account_id, e.created_at, 0,
           (f <> 'resolved' AND x = 'resolved')::int,
           (f = 'resolved' AND x NOT IN ('resolved', 'closed'))::int,
           (f <> 'closed' AND x = 'closed')::int,
           CASE WHEN f NOT IN ('resolved', 'closed') AND x IN ('resolved', 'closed') THEN -1
                WHEN f IN ('resolved', 'closed') AND x NOT IN ('resolved', 'closed') THEN 1 ELSE 0 END
      FROM ticket_timeline e
      JOIN tickets t ON t.id = e.ticket_id AND t.deleted_at IS NULL
      CROSS JOIN LATERAL (SELECT e.from_value #>> '{}' AS f, e.to_value #>> '{}' AS x) v
     WHERE e.event_type = 'status_changed' AND e.account_id = :account_id
  ) marks
 GROUP BY account_id, slot
"""

# The marks of the timeline, as SQL over a row ``e`` of ticket_timeline (creation or status change).
_MARK_COLUMNS = """
    (e.event_type = 'ticket_created')::int AS created,
    (x = 'resolved' AND f IS DISTINCT FROM 'resolved')::int AS resolved,
    (f = 'resolved' AND x NOT IN ('resolved', 'closed'))::int AS reopened,
    (x = 'closed' AND f IS DISTINCT FROM 'closed')::int AS closed,
    CASE WHEN e.event_type = 'ticket_created' THEN (x NOT IN ('resolved', 'closed'))::int
         WHEN f NOT IN ('resolved', 'closed') AND x IN ('resolved', 'closed') THEN -1
         WHEN f IN ('resolved', 'closed') AND x NOT IN ('resolved', 'closed') THEN 1 ELSE 0 END AS backlog_change
"""
_STATUSES = """
    CROSS JOIN LATERAL (SELECT CASE WHEN e.event_type = 'ticket_created' THEN NULL ELSE e.from_value #>> '{}' END AS f,
                               CASE WHEN e.event_type = 'ticket_created' THEN coalesce(e.data->>'status', 'open')
                                    ELSE e.to_value #>> '{}' END AS x) v
"""
_SUMS = ", ".join(f"coalesce(sum({name}), 0)::int AS {name}" for name in COUNTS)


def _filters(filters: dict[str, Any], alias: str = "t") -> str:
    """``AND`` conditions on the ticket's current team, priority and type (bound as :team_id …)."""
    parts = []
    if filters.get("team_id") is not None:
        parts.append(f"AND {alias}.assigned_to_team_id = :team_id")
    if filters.get("priorities"):
        parts.append(f"AND {alias}.priority = ANY(:priorities)")
    if filters.get("type_id") is not None:
        parts.append(f"AND {alias}.type_id = :type_id")
    return " ".join(parts)


def _params(account_id: int, filters: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"account_id": account_id, **{k: v for k, v in filters.items() if v is not None}, **more}


class ReportRollup:
    """The rollup's writes: the marks of one ticket write, added in its transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, account_id: int, slots: dict[datetime, Marks]) -> None:
        """Add the marks per slot (slots in order, so two writes never lock two rows in opposite
        orders)."""
        if not slots:
            return
        rows = [{"account_id": account_id, "slot": slot, **marks.as_dict()} for slot, marks in sorted(slots.items())]
        statement = pg_insert(TicketReportSlot).values(rows)
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=["account_id", "slot"],
            set_={name: getattr(TicketReportSlot, name) + getattr(statement.excluded, name) for name in COUNTS}))

    async def history(self, ticket_id: int) -> list[StatusMark]:
        """A ticket's creation and status changes (what a delete takes back out of the rollup)."""
        rows = await self.session.execute(text(
            "SELECT e.created_at, v.f, v.x FROM ticket_timeline e " + _STATUSES +
            " WHERE e.ticket_id = :ticket_id AND e.event_type IN ('ticket_created', 'status_changed') ORDER BY e.id"),
            {"ticket_id": ticket_id})
        return [StatusMark(at=row[0], from_status=row[1], to_status=row[2]) for row in rows]

    async def rebuild(self, account_id: int) -> None:
        await self.session.execute(text("DELETE FROM ticket_report_slots WHERE account_id = :account_id"),
                                   {"account_id": account_id})
        await self.session.execute(text(REBUILD_SQL), {"account_id": account_id})


def _per_bucket(rows: Any, count: int) -> tuple[int, list[Marks]]:
    """Rows ``(bucket, counts…)`` from ``width_bucket`` over the buckets' starts: bucket 0 is
    before the range (only its backlog change matters), 1..count the buckets."""
    before, buckets = 0, [Marks() for _ in range(count)]
    for row in rows:
        values = dict(row._mapping)
        index = values.pop("bucket")
        if index == 0:
            before += values["backlog_change"]
        else:
            buckets[index - 1] = Marks(**values)
    return before, buckets


class ReportQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def from_rollup(self, account_id: int, bounds: list[datetime]) -> tuple[int, list[Marks]]:
        """Per bucket (``bounds``: the buckets' starts and the last end, all on slot boundaries) the
        rollup's sums, and the backlog at the start (every slot before it)."""
        statement = text(
            f"SELECT width_bucket(slot, :starts) AS bucket, {_SUMS} FROM ticket_report_slots "
            "WHERE account_id = :account_id AND slot < :until GROUP BY 1"
        ).bindparams(bindparam("starts", type_=ARRAY(TIMESTAMP(timezone=True))))
        rows = await self.session.execute(statement, {"account_id": account_id, "starts": bounds[:-1],
                                                      "until": bounds[-1]})
        return _per_bucket(rows, len(bounds) - 1)

    async def from_history(self, account_id: int, bounds: list[datetime],
                           filters: dict[str, Any]) -> tuple[int, list[Marks]]:
        """The same figures from the tickets (current team, priority, type) and their timelines."""
        where = _filters(filters)
        # A ticket has marks in the range only if its last status change (or creation) is at or after
        # its start: the tickets so found (``ix_tickets_status_changed``, filters in the index), then
        # their timelines (``ix_ticket_timeline_ticket``).
        marks = text(
            f"SELECT width_bucket(e.created_at, :starts) AS bucket, {_SUMS} FROM ("
            f"  SELECT e.created_at, {_MARK_COLUMNS} FROM tickets t"
            "   JOIN ticket_timeline e ON e.ticket_id = t.id AND e.event_type IN ('ticket_created', 'status_changed')"
            f"    AND e.created_at >= :since AND e.created_at < :until {_STATUSES}"
            "  WHERE t.account_id = :account_id AND t.deleted_at IS NULL AND t.status_changed_at >= :since"
            f"   AND t.created_at < :until {where}) e GROUP BY 1"
        ).bindparams(bindparam("starts", type_=ARRAY(TIMESTAMP(timezone=True))))
        rows = await self.session.execute(marks, _params(account_id, filters, starts=bounds[:-1], since=bounds[0],
                                                         until=bounds[-1]))
        _, buckets = _per_bucket(rows, len(bounds) - 1)
        return await self.backlog_at(account_id, bounds[0], filters), buckets

    async def backlog_at(self, account_id: int, instant: datetime, filters: dict[str, Any]) -> int:
        """Tickets open at ``instant``: created before it and, then, neither resolved nor closed.
        Unchanged since: their status now; changed since: the status their first later change
        left."""
        where = _filters(filters)
        unchanged = await self.session.scalar(text(
            "SELECT count(*) FROM tickets t WHERE t.account_id = :account_id AND t.deleted_at IS NULL"
            " AND t.status IN ('open', 'in_progress', 'waiting_customer') AND coalesce(t.status_changed_at, t.created_at) < :at"
            f" AND t.created_at < :at {where}"), _params(account_id, filters, at=instant))
        changed = await self.session.scalar(text(
            "SELECT count(*) FROM tickets t CROSS JOIN LATERAL ("
            "  SELECT e.from_value #>> '{}' AS status FROM ticket_timeline e WHERE e.ticket_id = t.id"
            "   AND e.event_type = 'status_changed' AND e.created_at >= :at ORDER BY e.created_at, e.id LIMIT 1) first"
            " WHERE t.account_id = :account_id AND t.deleted_at IS NULL AND t.status_changed_at >= :at"
            f" AND t.created_at < :at AND first.status NOT IN ('resolved', 'closed') {where}"),
            _params(account_id, filters, at=instant))
        return int(unchanged or 0) + int(changed or 0)

    # -- the summary -------------------------------------------------------------------------------

    async def summary(self, account_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """One scan of the tickets created in ``[since, until)``: totals, and counts by priority,
        team and category (``GROUPING SETS``; ``grouped`` names the set of each row)."""
        rows = await self.session.execute(text(
            "SELECT CASE WHEN grouping(priority) = 0 THEN 'priority' WHEN grouping(assigned_to_team_id) = 0"
            "            THEN 'team' WHEN grouping(category_id) = 0 THEN 'category' ELSE 'total' END AS grouped,"
            "       priority, assigned_to_team_id AS team_id, category_id, count(*) AS tickets,"
            "       count(*) FILTER (WHERE escalation_count > 0) AS escalated,"
            "       count(*) FILTER (WHERE sla_first_response_met) AS first_response_met,"
            "       count(*) FILTER (WHERE NOT sla_first_response_met) AS first_response_breached,"
            "       count(*) FILTER (WHERE sla_resolution_met) AS resolution_met,"
            "       count(*) FILTER (WHERE NOT sla_resolution_met) AS resolution_breached,"
            "       sum(first_response_time) AS first_response_minutes, count(first_response_time) AS first_responses,"
            "       sum(resolution_time) AS resolution_minutes, count(resolution_time) AS resolutions"
            "  FROM tickets WHERE account_id = :account_id AND deleted_at IS NULL"
            "   AND created_at >= :since AND created_at < :until"
            " GROUP BY GROUPING SETS ((), (priority), (assigned_to_team_id), (category_id))"),
            {"account_id": account_id, "since": since, "until": until})
        return [dict(row._mapping) for row in rows]

    async def names(self, account_id: int, table: str, ids: list[int]) -> dict[int, str]:
        """Names of the account's teams or categories (``table``: ``teams`` / ``ticket_categories``)."""
        ids = [i for i in ids if is_storable_id(i)]
        if not ids:
            return {}
        assert table in ("teams", "ticket_categories")
        rows = await self.session.execute(text(f"SELECT id, name FROM {table} WHERE account_id = :account_id"
                                               " AND id = ANY(:ids)"), {"account_id": account_id, "ids": ids})
        return {row[0]: row[1] for row in rows}
