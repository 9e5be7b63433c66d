"""/api/sla: policies, business calendars and compliance; and the manual SLA pause/resume of a
ticket (``/api/tickets/{id}/sla/pause|resume``, on ``ticket_router``).

Reads need readSupport (as every read of the API); policy and calendar writes need
manageSettings; pause/resume need writeSupport. Policy edits apply to new tickets at
once and to running tickets at their next update (PATCH)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Union

from fastapi import APIRouter, Body as BodyParam, Depends, Query, Request, Response
from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel

from pulse.api.deps import IfMatchHeader, Manager, Reader, Session, Writer
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import Tickets, expected_version
from pulse.api.schemas import Body, not_null
from pulse.domain.calendar import DAY_NAMES, holiday_country_codes, iana_zone_names
from pulse.domain.errors import ValidationFailed
from pulse.domain.ids import MAX_INT
from pulse.domain.settings_records import SlaCalendarRecord, SlaPolicyRecord
from pulse.domain.tickets import Priority, TicketStatus
from pulse.repositories.sla import GROUPS
from pulse.services.sla import ComplianceService, SlaSettingsService, parse_range

router = APIRouter(prefix="/api/sla", tags=["sla"])
ticket_router = APIRouter(prefix="/api/tickets", tags=["sla"])

MAX_MINUTES = 366 * 24 * 60


# -- bodies and views -------------------------------------------------------------------------------

Window = tuple[str, str]
MAX_WINDOWS = 48  # opening windows in one day
MAX_HOLIDAYS = 2_000  # holiday dates in one calendar
MAX_REFERENCES = 500  # types, categories or teams a conditional policy names
# What the schema can say of a calendar (the rest: a window starts before it ends, a day's windows
# do not overlap, is checked by ``BusinessCalendar``).
_ZONE = {"enum": list(iana_zone_names())}
_COUNTRY = {"enum": list(holiday_country_codes())}
_HHMM = {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}
_WEEK = {"propertyNames": {"enum": list(DAY_NAMES)}, "maxProperties": len(DAY_NAMES),
         "additionalProperties": {"type": "array", "maxItems": MAX_WINDOWS, "items": {
             "type": "array", "prefixItems": [_HHMM, _HHMM], "minItems": 2, "maxItems": 2}}}


class CalendarBody(Body):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64, json_schema_extra=_ZONE)
    weekly_hours: dict[str, list[Window]] = Field(json_schema_extra=_WEEK)
    holidays: list[date] = Field(default=[], max_length=MAX_HOLIDAYS)
    holiday_country: str | None = Field(default=None, max_length=8, json_schema_extra=_COUNTRY)


class CalendarUpdateBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_ZONE)
    weekly_hours: dict[str, list[Window]] | None = Field(default=None, json_schema_extra=_WEEK)
    holidays: list[date] | None = Field(default=None, max_length=MAX_HOLIDAYS)
    holiday_country: str | None = Field(default=None, max_length=8, json_schema_extra=_COUNTRY)
    version: int | None = None

    _not_null = field_validator("name", "timezone", "weekly_hours", "holidays")(not_null)


class ConditionsBody(Body):
    priorities: list[Priority] | None = Field(default=None, max_length=len(Priority))
    tags: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=50)
    type_ids: list[int] | None = Field(default=None, max_length=MAX_REFERENCES)
    category_ids: list[int] | None = Field(default=None, max_length=MAX_REFERENCES)
    team_ids: list[int] | None = Field(default=None, max_length=MAX_REFERENCES)


class PolicyFields(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    first_response_minutes: int | None = Field(default=None, ge=1, le=MAX_MINUTES)
    resolution_minutes: int | None = Field(default=None, ge=1, le=MAX_MINUTES)
    at_risk_percent: int | None = Field(default=None, ge=1, le=100)
    calendar_id: int | None = None
    pause_statuses: list[TicketStatus] | None = Field(default=None, max_length=len(TicketStatus))
    version: int | None = None

    _not_null = field_validator("name", "first_response_minutes", "resolution_minutes", "at_risk_percent",
                                "pause_statuses")(not_null)


class PolicyUpdateBody(PolicyFields):
    """PUT of one policy: fields not sent keep their value. ``conditions``, ``order`` and
    ``enabled`` apply to conditional policies only."""

    conditions: ConditionsBody | None = None
    order: int | None = Field(default=None, ge=0, le=MAX_INT)
    enabled: bool | None = None


class PriorityPolicyBody(PolicyFields):
    priority: Priority


class PolicyListBody(Body):
    policies: list[PriorityPolicyBody] = Field(min_length=1, max_length=len(Priority))


class PolicyCreateBody(Body):
    name: str = Field(min_length=1, max_length=200)
    conditions: ConditionsBody
    first_response_minutes: int = Field(ge=1, le=MAX_MINUTES)
    resolution_minutes: int = Field(ge=1, le=MAX_MINUTES)
    at_risk_percent: int = Field(default=80, ge=1, le=100)
    calendar_id: int | None = None
    pause_statuses: list[TicketStatus] = Field(default=[TicketStatus.WAITING_CUSTOMER], max_length=len(TicketStatus))
    order: int = Field(default=0, ge=0, le=MAX_INT)
    enabled: bool = True


class PauseBody(Body):
    reason: str | None = Field(default=None, max_length=500)


def render_policy(policy: SlaPolicyRecord) -> dict[str, Any]:
    body = policy.to_api()
    if policy.conditions is not None:  # only the conditions given, in camelCase
        given = policy.conditions.model_dump(mode="json", exclude_none=True)
        body["conditions"] = {to_camel(key): value for key, value in given.items()}
    return body


def render_calendar(calendar: SlaCalendarRecord) -> dict[str, Any]:
    return calendar.to_api()


# -- policies -------------------------------------------------------------------------------------

@router.get("/policies")
async def list_policies(principal: Reader, session: Session,
                        page: Annotated[Page, Depends(page_params)]) -> dict:
    rows = await SlaSettingsService(session).list_policies(principal.account_id)
    start = (page.page - 1) * page.page_size
    return paginated([render_policy(row) for row in rows[start:start + page.page_size]], page, len(rows))


@router.put("/policies")
async def put_priority_policies(
    principal: Manager, session: Session,
    body: Annotated[Union[Annotated[list[PriorityPolicyBody], Field(max_length=len(Priority))], PolicyListBody],
                    BodyParam()],
) -> dict:
    """Set several priority policies at once: a list of ``{priority, …}`` or ``{"policies": [...]}``.
    Answers with every policy."""
    items = body.policies if isinstance(body, PolicyListBody) else body
    if not items:
        raise ValidationFailed("send at least one policy", details=[{"field": "body", "message": "empty list"}])
    rows = await SlaSettingsService(session).put_priority_policies(principal.account_id,
                                                                   [item.changes() for item in items])
    return {"data": [render_policy(row) for row in rows],
            "pagination": {"page": 1, "pageSize": len(rows), "total": len(rows), "totalPages": 1}}


@router.post("/policies", status_code=201)
async def create_policy(body: PolicyCreateBody, principal: Manager, session: Session,
                        response: Response) -> dict:
    values = body.model_dump(by_alias=False)
    values["conditions"] = body.conditions.changes()
    row = await SlaSettingsService(session).create_policy(principal.account_id, values)
    response.headers["Location"] = f"/api/sla/policies/{row.id}"
    return render_policy(row)


@router.get("/policies/{reference}")
async def get_policy(reference: str, principal: Reader, session: Session) -> dict:
    """One policy, by id or by priority (``/api/sla/policies/urgent``)."""
    return render_policy(await SlaSettingsService(session).policy(principal.account_id, reference))


@router.put("/policies/{reference}")
async def put_policy(reference: str, body: PolicyUpdateBody, principal: Manager, session: Session,
                     if_match: IfMatchHeader = None) -> dict:
    values = body.changes()
    version = expected_version(if_match, values.pop("version", None))
    if body.conditions is not None:
        values["conditions"] = body.conditions.changes()
    row = await SlaSettingsService(session).put_policy(principal.account_id, reference, values, version)
    return render_policy(row)


@router.delete("/policies/{reference}", status_code=204)
async def delete_policy(reference: str, principal: Manager, session: Session) -> Response:
    await SlaSettingsService(session).delete_policy(principal.account_id, reference)
    return Response(status_code=204)


# -- calendars ------------------------------------------------------------------------------------

@router.get("/calendars")
async def list_calendars(principal: Reader, session: Session,
                         page: Annotated[Page, Depends(page_params)]) -> dict:
    rows, total = await SlaSettingsService(session).list_calendars(principal.account_id, page=page.page,
                                                                   page_size=page.page_size)
    return paginated([render_calendar(row) for row in rows], page, total)


@router.post("/calendars", status_code=201)
async def create_calendar(body: CalendarBody, principal: Manager, session: Session,
                          response: Response) -> dict:
    row = await SlaSettingsService(session).create_calendar(principal.account_id, body.changes())
    response.headers["Location"] = f"/api/sla/calendars/{row.id}"
    return render_calendar(row)


@router.get("/calendars/{calendar_id}")
async def get_calendar(calendar_id: int, principal: Reader, session: Session) -> dict:
    return render_calendar(await SlaSettingsService(session).calendar(principal.account_id, calendar_id))


@router.put("/calendars/{calendar_id}")
async def update_calendar(calendar_id: int, body: CalendarUpdateBody, principal: Manager, session: Session,
                          if_match: IfMatchHeader = None) -> dict:
    values = body.changes()
    version = expected_version(if_match, values.pop("version", None))
    row = await SlaSettingsService(session).update_calendar(principal.account_id, calendar_id, values, version)
    return render_calendar(row)


@router.delete("/calendars/{calendar_id}", status_code=204)
async def delete_calendar(calendar_id: int, principal: Manager, session: Session) -> Response:
    await SlaSettingsService(session).delete_calendar(principal.account_id, calendar_id)
    return Response(status_code=204)


# -- compliance -------------------------------------------------------------------------------------

def _priorities(value: str | None) -> list[Priority] | None:
    if not value:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    valid = {p.value for p in Priority}
    bad = [name for name in names if name not in valid]
    if bad:
        raise ValidationFailed(f"unknown priority {bad[0]!r}; valid: {', '.join(p.value for p in Priority)}",
                               details=[{"field": "priority", "message": f"one of {', '.join(sorted(valid))}"}])
    return [Priority(name) for name in names]


COMPLIANCE_PARAMS = {"from", "to", "priority", "teamId", "groupBy"}


@router.get("/compliance")
async def compliance(
    request: Request, principal: Reader, session: Session,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    priority: str | None = None,
    team_id: Annotated[int | None, Query(alias="teamId")] = None,
    group_by: Annotated[str | None, Query(alias="groupBy", json_schema_extra={"enum": list(GROUPS)})] = None,
) -> dict:
    """SLA compliance of the tickets created in ``[from, to)`` (default: the last 30 days).
    ``met``/``breached`` count decided metrics (a running metric past its due date counts as
    breached); ``complianceRate`` = met / (met + breached) in percent; averages in business
    minutes."""
    unknown = sorted(set(request.query_params) - COMPLIANCE_PARAMS)
    if unknown:
        raise ValidationFailed(f"unknown parameter {unknown[0]}; valid: {', '.join(sorted(COMPLIANCE_PARAMS))}",
                               details=[{"field": name, "message": "unknown parameter"} for name in unknown])
    if group_by is not None and group_by not in GROUPS:
        raise ValidationFailed(f"groupBy must be one of {', '.join(GROUPS)}",
                               details=[{"field": "groupBy", "message": f"one of {', '.join(GROUPS)}"}])
    since, until = parse_range(start, end, datetime.now(timezone.utc))
    return await ComplianceService(session).report(principal.account_id, since, until,
                                                   priorities=_priorities(priority), team_id=team_id,
                                                   group_by=group_by)


# -- a ticket's SLA pause -------------------------------------------------------------------------

@ticket_router.post("/{ticket_ref}/sla/pause")
async def pause_sla(ticket_ref: str, principal: Writer, tickets: Tickets,
                    body: Annotated[PauseBody | None, BodyParam()] = None) -> dict:
    """Pause the ticket's SLA clock by hand (200 with the ticket; already paused by hand: no-op)."""
    return (await tickets.pause_sla(principal, ticket_ref, body.reason if body else None)).to_api()


@ticket_router.post("/{ticket_ref}/sla/resume")
async def resume_sla(ticket_ref: str, principal: Writer, tickets: Tickets,
                     body: Annotated[PauseBody | None, BodyParam()] = None) -> dict:
    """End a manual pause. A ticket paused by its status (``waiting_customer``) answers 409."""
    return (await tickets.resume_sla(principal, ticket_ref, body.reason if body else None)).to_api()
