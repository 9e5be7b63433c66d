"""Reports (spec §7): ticket volume per day/week/month in a time zone, and the summary of the
tickets created in a range. What counts is in ``pulse.domain.reports`` and docs/decisions.md.

An unfiltered report whose buckets start on the rollup's 15-minute slots reads the rollup (the
days before it and, unless every bound is a UTC midnight, the slots of its range); a filtered one
(team, priority, type) reads the tickets and their timelines, which count the same way. The
summary reads its own rollup for the whole UTC days of its range and the tickets for the rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.reports import Marks, SummaryFigures, buckets, on_slot
from pulse.domain.tickets import PRIORITY_SEVERITY, Priority
from pulse.repositories.reports import ReportQueries

TOP_CATEGORIES = 10
TIME_UNIT = "business_minutes"


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _average(minutes: int, count: int) -> float | None:
    return round(minutes / count, 1) if count else None


class ReportService:
    def __init__(self, session: AsyncSession) -> None:
        self.queries = ReportQueries(session)

    async def tickets(self, account_id: int, since: datetime, until: datetime, *, group_by: str, zone: ZoneInfo,
                      filters: dict[str, Any]) -> dict[str, Any]:
        periods = buckets(since, until, group_by, zone)
        bounds = [bucket.start for bucket in periods] + [periods[-1].end]
        filtered = any(value is not None for value in filters.values())
        if not filtered and all(on_slot(bound) for bound in bounds):
            backlog, counts = await self.queries.from_rollup(account_id, bounds)
        else:
            backlog, counts = await self.queries.from_history(account_id, bounds, filters)
        start_backlog, rows, total = backlog, [], Marks()
        for bucket, marks in zip(periods, counts):
            backlog += marks.backlog_change
            total = total + marks
            rows.append({"period": bucket.period.isoformat(), "from": _instant(bucket.start),
                         "to": _instant(bucket.end), "created": marks.created, "resolved": marks.resolved,
                         "reopened": marks.reopened, "closed": marks.closed, "backlog": backlog})
        return {
            "from": _instant(since), "to": _instant(until), "groupBy": group_by, "timezone": zone.key,
            "filters": {"teamId": filters.get("team_id"), "priority": filters.get("priorities"),
                        "typeId": filters.get("type_id")},
            "totals": {"created": total.created, "resolved": total.resolved, "reopened": total.reopened,
                       "closed": total.closed, "backlogAtStart": start_backlog, "backlogAtEnd": backlog},
            "buckets": rows,
        }

    async def summary(self, account_id: int, since: datetime, until: datetime, zone: ZoneInfo) -> dict[str, Any]:
        figures = await self.queries.summary(account_id, since, until)
        total = figures.get(("total", ""), SummaryFigures())
        met = total.first_response_met + total.resolution_met
        decided = met + total.first_response_breached + total.resolution_breached
        by_priority = {value: f.tickets for (dimension, value), f in figures.items() if dimension == "priority"}
        teams = sorted(((int(value) if value else None, f.tickets) for (dimension, value), f in figures.items()
                        if dimension == "team"), key=lambda team: (-team[1], team[0] is None, team[0] or 0))
        categories = sorted(((int(value), f.tickets) for (dimension, value), f in figures.items()
                             if dimension == "category" and value), key=lambda c: (-c[1], c[0]))[:TOP_CATEGORIES]
        team_names = await self.queries.names(account_id, "teams", [team_id for team_id, _ in teams if team_id])
        category_names = await self.queries.names(account_id, "ticket_categories", [c for c, _ in categories])
        return {
            "from": _instant(since), "to": _instant(until), "timezone": zone.key,
            "totalTickets": total.tickets,
            "slaCompliance": _rate(met, decided),
            "sla": {
                "firstResponse": {"met": total.first_response_met, "breached": total.first_response_breached,
                                  "complianceRate": _rate(total.first_response_met,
                                                          total.first_response_met + total.first_response_breached)},
                "resolution": {"met": total.resolution_met, "breached": total.resolution_breached,
                               "complianceRate": _rate(total.resolution_met,
                                                       total.resolution_met + total.resolution_breached)},
            },
            "averageFirstResponseTime": _average(total.first_response_minutes, total.first_responses),
            "averageResolutionTime": _average(total.resolution_minutes, total.resolutions),
            "timeUnit": TIME_UNIT,
            "escalatedTickets": total.escalated,
            "escalationRate": _rate(total.escalated, total.tickets) or 0.0,
            "topCategories": [{"categoryId": category_id, "name": category_names.get(category_id), "count": count}
                              for category_id, count in categories],
            "byPriority": [{"priority": priority.value, "count": by_priority.get(priority.value, 0)}
                           for priority in sorted(Priority, key=lambda p: -PRIORITY_SEVERITY[p])],
            "byTeam": [{"teamId": team_id, "name": team_names.get(team_id), "count": count}
                       for team_id, count in teams],
        }
