"""Report queries (spec §7): the ticket-volume rollup (written in each ticket write's transaction,
read by unfiltered reports), the same figures from the tickets and their timeline (filtered
reports, and ranges not cut on the rollup's 15-minute slots), and the summary's aggregates.

Both ways count by ``pulse.domain.reports``: a ticket's creation (``ticket_created``, with the
status it was created in) and each ``status_changed`` of its timeline is a mark; deleted tickets
count nowhere. The tests hold the two ways to the same figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.domain.reports import (
    COUNTS,
    SUMMARY_COUNTS,
    Marks,
    StatusMark,
    SummaryFigures,
    SummaryKey,
    day_of,
    on_day,
)

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

REBUILD_DAYS_SQL = """
INSERT INTO ticket_report_days (account_id, day, created, resolved, reopened, closed, backlog_change)
SELECT account_id, date_bin('1 day', slot, timestamptz '2000-01-01 00:00:00+00'),
       sum(created), sum(resolved), sum(reopened), sum(closed), sum(backlog_change)
  FROM ticket_report_slots WHERE account_id = :account_id GROUP BY 1, 2
"""

# The summary's rollup from the tickets: the figures of ``pulse.domain.reports.summary_marks``.
_SUMMARY_FIGURES = """
       count(*) AS tickets, count(*) FILTER (WHERE escalation_count > 0) AS escalated,
       count(*) FILTER (WHERE sla_first_response_met) AS first_response_met,
       count(*) FILTER (WHERE NOT sla_first_response_met) AS first_response_breached,
       count(*) FILTER (WHERE sla_resolution_met) AS resolution_met,
       count(*) FILTER (WHERE NOT sla_resolution_met) AS resolution_breached,
       coalesce(sum(first_response_time), 0) AS first_response_minutes, count(first_response_time) AS first_responses,
       coalesce(sum(resolution_time), 0) AS resolution_minutes, count(resolution_time) AS resolutions
"""
_SUMMARY_KEYS = """
       CASE WHEN grouping(priority) = 0 THEN 'priority' WHEN grouping(assigned_to_team_id) = 0 THEN 'team'
            WHEN grouping(category_id) = 0 THEN 'category' ELSE 'total' END AS dimension,
       CASE WHEN grouping(priority) = 0 THEN priority
            WHEN grouping(assigned_to_team_id) = 0 THEN coalesce(assigned_to_team_id::text, '')
            WHEN grouping(category_id) = 0 THEN coalesce(category_id::text, '') ELSE '' END AS value
"""
_SUMMARY_SETS = "GROUPING SETS ((), (priority), (assigned_to_team_id), (category_id))"
REBUILD_SUMMARY_SQL = f"""
INSERT INTO ticket_summary_days (account_id, created_on, dimension, value, {", ".join(SUMMARY_COUNTS)})
SELECT account_id, (created_at AT TIME ZONE 'UTC')::date, {_SUMMARY_KEYS}, {_SUMMARY_FIGURES}
  FROM tickets WHERE deleted_at IS NULL AND account_id = :account_id
 GROUP BY account_id, (created_at AT TIME ZONE 'UTC')::date, {_SUMMARY_SETS}
"""

# A write's marks: per slot, and summed per UTC day (slots locked first, each table in order).
_ADD_MARKS = text(f"""
WITH marks AS (
  SELECT * FROM unnest(CAST(:slots AS timestamptz[]), {", ".join(f"CAST(:{n} AS int[])" for n in COUNTS)})
           AS m(slot, {", ".join(COUNTS)})),
slots AS (
  INSERT INTO ticket_report_slots AS r (account_id, slot, {", ".join(COUNTS)})
  SELECT :account_id, slot, {", ".join(COUNTS)} FROM marks ORDER BY slot
  ON CONFLICT (account_id, slot) DO UPDATE SET {", ".join(f"{n} = r.{n} + excluded.{n}" for n in COUNTS)})
INSERT INTO ticket_report_days AS r (account_id, day, {", ".join(COUNTS)})
SELECT :account_id, date_bin('1 day', slot, timestamptz '2000-01-01 00:00:00+00'),
       {", ".join(f"sum({n})" for n in COUNTS)}
  FROM marks GROUP BY 2 ORDER BY 2
ON CONFLICT (account_id, day) DO UPDATE SET {", ".join(f"{n} = r.{n} + excluded.{n}" for n in COUNTS)}
""")

# A write's change of the summary's figures, one statement built once; rows locked in key order
# (as Python sorts the keys: byte order, so two writes never lock two rows in opposite orders).
_ADD_SUMMARY = text(f"""
INSERT INTO ticket_summary_days AS r (account_id, created_on, dimension, value, {", ".join(SUMMARY_COUNTS)})
SELECT :account_id, day, dimension, value, {", ".join(SUMMARY_COUNTS)}
  FROM unnest(CAST(:days AS date[]), CAST(:dimensions AS text[]), CAST(:dimension_values AS text[]),
              {", ".join(f"CAST(:{n} AS bigint[])" for n in SUMMARY_COUNTS)})
       AS m(day, dimension, value, {", ".join(SUMMARY_COUNTS)})
 ORDER BY day, dimension COLLATE "C", value COLLATE "C"
ON CONFLICT (account_id, created_on, dimension, value) DO UPDATE
  SET {", ".join(f"{n} = r.{n} + excluded.{n}" for n in SUMMARY_COUNTS)}
""")

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
        """Add the marks per slot, and their sums to the slots' UTC days: one statement. Slots and
        days are locked in order (slots first), so two writes never lock two rows in opposite
        orders."""
        if not slots:
            return
        ordered = sorted(slots.items())
        columns: dict[str, Any] = {"slots": [slot for slot, _ in ordered]}
        for name in COUNTS:
            columns[name] = [getattr(marks, name) for _, marks in ordered]
        await self.session.execute(_ADD_MARKS, {"account_id": account_id, **columns})

    async def add_summary(self, account_id: int, change: dict[SummaryKey, SummaryFigures]) -> None:
        """Add a write's change of the summary's figures (rows in key order)."""
        if not change:
            return
        keys = sorted(change)
        columns: dict[str, Any] = {"days": [day for day, _, _ in keys], "dimensions": [d for _, d, _ in keys],
                                   "dimension_values": [value for _, _, value in keys]}
        for name in SUMMARY_COUNTS:
            columns[name] = [getattr(change[key], name) for key in keys]
        await self.session.execute(_ADD_SUMMARY, {"account_id": account_id, **columns})

    async def history(self, ticket_id: int) -> list[StatusMark]:
        """A ticket's creation and status changes (what a delete takes back out of the rollup)."""
        rows = await self.session.execute(text(
            "SELECT e.created_at, v.f, v.x FROM ticket_timeline e " + _STATUSES +
            " WHERE e.ticket_id = :ticket_id AND e.event_type IN ('ticket_created', 'status_changed') ORDER BY e.id"),
            {"ticket_id": ticket_id})
        return [StatusMark(at=row[0], from_status=row[1], to_status=row[2]) for row in rows]

    async def rebuild(self, account_id: int) -> None:
        """The account's rollups from what is stored (the bench's load; migrations 0018 and 0021
        hold the same statements for every account)."""
        for table in ("ticket_report_slots", "ticket_report_days", "ticket_summary_days"):
            await self.session.execute(text(f"DELETE FROM {table} WHERE account_id = :account_id"),
                                       {"account_id": account_id})
        for statement in (REBUILD_SQL, REBUILD_DAYS_SQL, REBUILD_SUMMARY_SQL):
            await self.session.execute(text(statement), {"account_id": account_id})


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


def _add_figures(figures: dict[tuple[str, str], SummaryFigures],
                 rows: Any) -> dict[tuple[str, str], SummaryFigures]:
    """``figures`` plus rows ``(dimension, value, counts…)``; keys left with no ticket dropped."""
    for row in rows:
        values = dict(row._mapping)
        key = (values.pop("dimension"), values.pop("value"))
        figures[key] = figures.get(key, SummaryFigures()) + SummaryFigures(**{n: int(values[n]) for n in SUMMARY_COUNTS})
    return {key: value for key, value in figures.items() if value.tickets}


class ReportQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def from_rollup(self, account_id: int, bounds: list[datetime]) -> tuple[int, list[Marks]]:
        """Per bucket (``bounds``: the buckets' starts and the last end, all on slot boundaries) the
        rollup's sums, and the backlog at the start. Days before the first bucket's UTC day are read
        from the days (the backlog), the rest from the slots — or all from the days when every
        bound is a UTC midnight."""
        coarse_until = bounds[-1] if all(on_day(bound) for bound in bounds) else day_of(bounds[0])
        statement = text(
            f"SELECT width_bucket(at, :starts) AS bucket, {_SUMS} FROM ("
            f"  SELECT day AS at, {', '.join(COUNTS)} FROM ticket_report_days"
            "    WHERE account_id = :account_id AND day < :coarse_until"
            f"  UNION ALL SELECT slot, {', '.join(COUNTS)} FROM ticket_report_slots"
            "    WHERE account_id = :account_id AND slot >= :coarse_until AND slot < :until) m GROUP BY 1"
        ).bindparams(bindparam("starts", type_=ARRAY(TIMESTAMP(timezone=True))))
        rows = await self.session.execute(statement, {"account_id": account_id, "starts": bounds[:-1],
                                                      "coarse_until": coarse_until, "until": bounds[-1]})
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

    async def summary(self, account_id: int, since: datetime, until: datetime) -> dict[tuple[str, str], SummaryFigures]:
        """The summary's figures of the tickets created in ``[since, until)``, in total and per
        priority, team and category, keyed ``(dimension, value)`` as the rollup keys them: the whole
        UTC days inside from the rollup, the hours before and after them from the tickets."""
        first_day = day_of(since) if on_day(since) else day_of(since) + timedelta(days=1)
        last_day = day_of(until)
        if first_day >= last_day:
            return await self._summary_scan(account_id, [(since, until)])
        figures = await self._summary_scan(account_id, [(since, first_day), (last_day, until)])
        rows = await self.session.execute(text(
            f"SELECT dimension, value, {', '.join(f'sum({n})::bigint AS {n}' for n in SUMMARY_COUNTS)}"
            "  FROM ticket_summary_days WHERE account_id = :account_id AND created_on >= :first AND created_on < :last"
            " GROUP BY dimension, value"), {"account_id": account_id, "first": first_day.date(), "last": last_day.date()})
        return _add_figures(figures, rows)

    async def _summary_scan(self, account_id: int, ranges: list[tuple[datetime, datetime]]) -> dict[tuple[str, str], SummaryFigures]:
        """The same figures read from the tickets created in the (non-empty) ranges given."""
        ranges = [(start, end) for start, end in ranges if start < end]
        if not ranges:
            return {}
        within = " OR ".join(f"(created_at >= :since{i} AND created_at < :until{i})" for i in range(len(ranges)))
        params: dict[str, Any] = {"account_id": account_id}
        for i, (start, end) in enumerate(ranges):
            params |= {f"since{i}": start, f"until{i}": end}
        rows = await self.session.execute(text(
            f"SELECT {_SUMMARY_KEYS}, {_SUMMARY_FIGURES} FROM tickets"
            f" WHERE account_id = :account_id AND deleted_at IS NULL AND ({within}) GROUP BY {_SUMMARY_SETS}"), params)
        return _add_figures({}, rows)

    async def names(self, account_id: int, table: str, ids: list[int]) -> dict[int, str]:
        """Names of the account's teams or categories (``table``: ``teams`` / ``ticket_categories``)."""
        ids = [i for i in ids if is_storable_id(i)]
        if not ids:
            return {}
        assert table in ("teams", "ticket_categories")
        rows = await self.session.execute(text(f"SELECT id, name FROM {table} WHERE account_id = :account_id"
                                               " AND id = ANY(:ids)"), {"account_id": account_id, "ids": ids})
        return {row[0]: row[1] for row in rows}
