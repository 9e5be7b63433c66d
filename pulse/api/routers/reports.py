"""/api/reports (spec §7): ticket volume per bucket and the summary; readSupport.

Both answer JSON, or CSV when the request's ``Accept`` names ``text/csv`` (one header row; the
tickets report one line per bucket, the summary one line per figure: ``section,key,name,value``).
Query parameters are checked strictly: unknown ones, bad dates, an unknown ``groupBy`` or time
zone, ``from`` not before ``to`` and more than 1,000 buckets are 422s."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from pulse.api.deps import Reader, Session
from pulse.domain.calendar import iana_zone_names
from pulse.domain.errors import ValidationFailed
from pulse.domain.ids import is_storable_id
from pulse.domain.reports import GROUPS, report_range, zone_named
from pulse.domain.tickets import Priority
from pulse.services.reports import ReportService

router = APIRouter(prefix="/api/reports", tags=["reports"])

TICKETS_PARAMS = {"from", "to", "groupBy", "timezone", "teamId", "priority", "typeId"}
SUMMARY_PARAMS = {"from", "to", "timezone"}
CSV_TYPE = "text/csv"
_CSV_RESPONSE = {200: {"content": {"application/json": {}, CSV_TYPE: {"schema": {"type": "string"}}},
                       "description": "the report (JSON, or CSV when Accept names text/csv)"}}


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def _check_known(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown parameter {unknown[0]}; valid: {', '.join(sorted(allowed))}",
                               details=[{"field": name, "message": "unknown parameter"} for name in unknown])


def _id(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not is_storable_id(int(value)):
        raise _bad(field, "an id (a positive whole number within bigint)")
    return int(value)


def _priorities(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    valid = [p.value for p in Priority]
    if not names or any(name not in valid for name in names):
        raise _bad("priority", f"one or more of {', '.join(valid)}, comma-separated")
    return sorted(set(names))


def _wants_csv(request: Request) -> bool:
    return CSV_TYPE in request.headers.get("accept", "").lower()


def _csv(rows: list[list[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


TICKET_COLUMNS = ["period", "from", "to", "created", "resolved", "reopened", "closed", "backlog"]


def tickets_csv(report: dict[str, Any]) -> Response:
    rows: list[list[Any]] = [TICKET_COLUMNS]
    rows += [[bucket[column] for column in TICKET_COLUMNS] for bucket in report["buckets"]]
    return _csv(rows, f"tickets-by-{report['groupBy']}.csv")


def summary_csv(report: dict[str, Any]) -> Response:
    """One figure per line, ``section,key,name,value`` (a pivot table's input)."""
    rows: list[list[Any]] = [["section", "key", "name", "value"],
                             ["total", "tickets", None, report["totalTickets"]],
                             ["sla", "complianceRate", None, report["slaCompliance"]]]
    for metric in ("firstResponse", "resolution"):
        for key in ("met", "breached", "complianceRate"):
            rows.append(["sla", f"{metric}.{key}", None, report["sla"][metric][key]])
    rows += [["time", "averageFirstResponseTime", report["timeUnit"], report["averageFirstResponseTime"]],
             ["time", "averageResolutionTime", report["timeUnit"], report["averageResolutionTime"]],
             ["escalation", "escalatedTickets", None, report["escalatedTickets"]],
             ["escalation", "escalationRate", None, report["escalationRate"]]]
    rows += [["category", row["categoryId"], row["name"], row["count"]] for row in report["topCategories"]]
    rows += [["priority", row["priority"], None, row["count"]] for row in report["byPriority"]]
    rows += [["team", row["teamId"], row["name"], row["count"]] for row in report["byTeam"]]
    return _csv(rows, "summary.csv")


# What the schema says of the parameters (the handlers check them and name the one that is wrong).
_DAY_OR_INSTANT: dict[str, Any] = {"min_length": 1, "max_length": 64, "json_schema_extra": {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}}
_ZONE = {"enum": list(iana_zone_names())}
_ID = "^[0-9]{1,19}$"
_PRIORITIES = "^(urgent|high|medium|low)(,(urgent|high|medium|low))*$"


@router.get("/tickets", responses=_CSV_RESPONSE)
async def tickets_report(
    request: Request, principal: Reader, session: Session,
    start: Annotated[str | None, Query(alias="from", **_DAY_OR_INSTANT)] = None,
    end: Annotated[str | None, Query(alias="to", **_DAY_OR_INSTANT)] = None,
    group_by: Annotated[str, Query(alias="groupBy", max_length=16, json_schema_extra={"enum": list(GROUPS)})] = "day",
    time_zone: Annotated[str | None, Query(alias="timezone", max_length=64, json_schema_extra=_ZONE)] = None,
    team_id: Annotated[str | None, Query(alias="teamId", max_length=32, pattern=_ID)] = None,
    priority: Annotated[str | None, Query(max_length=64, pattern=_PRIORITIES)] = None,
    type_id: Annotated[str | None, Query(alias="typeId", max_length=32, pattern=_ID)] = None,
) -> Any:
    """Tickets created, resolutions, reopens, closes and the backlog at each bucket's end, per
    day, week (Monday–Sunday) or month of ``timezone`` (default UTC: accounts carry no time zone).
    ``from``/``to`` are dates (``to`` included) or instants; default the last 30 days. Filters
    (``teamId``, ``priority`` any-of, ``typeId``) apply to the tickets' current values."""
    _check_known(request, TICKETS_PARAMS)
    if group_by not in GROUPS:
        raise _bad("groupBy", f"one of {', '.join(GROUPS)}")
    zone = zone_named(time_zone)
    filters = {"team_id": _id(team_id, "teamId"), "priorities": _priorities(priority), "type_id": _id(type_id, "typeId")}
    since, until = report_range(start, end, zone, datetime.now(timezone.utc))
    report = await ReportService(session).tickets(principal.account_id, since, until, group_by=group_by, zone=zone,
                                                  filters=filters)
    return tickets_csv(report) if _wants_csv(request) else report


@router.get("/summary", responses=_CSV_RESPONSE)
async def summary_report(
    request: Request, principal: Reader, session: Session,
    start: Annotated[str | None, Query(alias="from", **_DAY_OR_INSTANT)] = None,
    end: Annotated[str | None, Query(alias="to", **_DAY_OR_INSTANT)] = None,
    time_zone: Annotated[str | None, Query(alias="timezone", max_length=64, json_schema_extra=_ZONE)] = None,
) -> Any:
    """The tickets created in ``[from, to)``: SLA compliance (decided metrics met, %), average
    first response and resolution time (``timeUnit``: minutes on each ticket's SLA clock —
    business minutes under a calendar, outside pauses), escalation rate (tickets escalated at
    least once ÷ tickets, %; 0 without tickets), top categories, counts by priority and team."""
    _check_known(request, SUMMARY_PARAMS)
    zone = zone_named(time_zone)
    since, until = report_range(start, end, zone, datetime.now(timezone.utc))
    report = await ReportService(session).summary(principal.account_id, since, until, zone)
    return summary_csv(report) if _wants_csv(request) else report
