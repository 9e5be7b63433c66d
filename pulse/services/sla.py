"""SLA services: policy selection for a ticket, storing the clock's state on the ticket (with its
timeline entries and outbox events), settings (policies, calendars) and compliance reports.
Services never commit: the activity or the request owns the transaction."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain import records, sla
from pulse.domain.calendar import BusinessCalendar, add_business_minutes
from pulse.domain.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from pulse.domain.ids import parse_id
from pulse.domain.settings_records import SlaCalendarRecord, SlaPolicyRecord
from pulse.domain.tickets import PRIORITY_SEVERITY, Priority, TicketStatus
from pulse.models import SlaCalendar, SlaPolicy
from pulse.repositories.sla import (
    ComplianceRepository,
    SlaCalendarRepository,
    SlaPolicyRepository,
)

log = logging.getLogger("pulse.sla")

# API (camelCase) names of the domain models' fields, for 422 details.
_CAMEL = {
    "weekly_hours": "weeklyHours",
    "holiday_country": "holidayCountry",
    "first_response_minutes": "firstResponseMinutes",
    "resolution_minutes": "resolutionMinutes",
    "at_risk_percent": "atRiskPercent",
    "pause_statuses": "pauseStatuses",
    "calendar_id": "calendarId",
    "type_ids": "typeIds",
    "category_ids": "categoryIds",
    "team_ids": "teamIds",
}


def _validation_failed(error: ValidationError, what: str, prefix: str = "") -> ValidationFailed:
    details = []
    for problem in error.errors():
        parts = [str(_CAMEL.get(str(part), part)) for part in problem.get("loc", ())]
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": prefix + (".".join(parts) or "body"), "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    return ValidationFailed(f"invalid {what}: {summary}", details=details)


# -- rows → domain ----------------------------------------------------------------------------------

def calendar_of(row: SlaCalendar) -> BusinessCalendar | None:
    """The stored calendar as domain data (None, i.e. 24×7, if it no longer validates)."""
    try:
        return BusinessCalendar(timezone=row.timezone, weekly_hours=row.weekly_hours,
                                holidays=list(row.holidays or []), holiday_country=row.holiday_country)
    except ValidationError:
        log.warning("SLA calendar %s no longer validates; counting 24x7", row.id)
        return None


def conditions_of(row: SlaPolicy) -> sla.PolicyConditions | None:
    return None if row.conditions is None else sla.PolicyConditions.model_validate(row.conditions)


def _check_reachable(row: SlaPolicy, calendar: BusinessCalendar | None, *, field: str | None = None) -> None:
    """A policy's targets must be reachable in its calendar (within the calendar's search horizon,
    ten years), else its tickets would have no due date: 422 when it is saved."""
    if calendar is None:
        return
    now = datetime.now(timezone.utc)
    for name, minutes in (("firstResponseMinutes", row.first_response_minutes),
                          ("resolutionMinutes", row.resolution_minutes)):
        try:
            add_business_minutes(calendar, now, minutes)
        except ValueError as error:
            raise ValidationFailed("the calendar never reaches this SLA target", details=[
                {"field": field or name, "message": f"{minutes} business minutes are not reached: {error}"}]) from None


def policy_of(row: SlaPolicy, calendar: SlaCalendar | None) -> sla.SlaPolicy:
    return sla.SlaPolicy(
        policy_id=row.id,
        name=row.name,
        first_response_minutes=row.first_response_minutes,
        resolution_minutes=row.resolution_minutes,
        at_risk_percent=row.at_risk_percent,
        pause_statuses=tuple(TicketStatus(s) for s in row.pause_statuses),
        calendar_id=row.calendar_id,
        calendar=calendar_of(calendar) if calendar is not None else None,
        version=row.version,
    )


class PolicySet:
    """An account's policies and calendars as domain data: which policy applies to a ticket is
    then pure (``sla.choose_policy``)."""

    def __init__(self, rows: list[Any], calendars: dict[int, Any]) -> None:
        self.rows = {row.id: row for row in rows}
        self.candidates = [
            sla.PolicyCandidate(policy=policy_of(row, None), priority=Priority(row.priority) if row.priority else None,
                                conditions=conditions_of(row), order=row.position, enabled=row.enabled)
            for row in rows
        ]
        self.calendars = calendars
        self.has_priority_policies = any(row.conditions is None for row in rows)

    def for_ticket(self, facts: sla.TicketFacts) -> sla.SlaPolicy:
        chosen = sla.choose_policy(self.candidates, facts)
        if chosen.calendar_id is None:
            return chosen
        return policy_of(self.rows[chosen.policy_id], self.calendars.get(chosen.calendar_id))


# Parsed policy sets by their stored text (policies, calendars): an edit of any row — through the
# API or by hand — changes the text, so a cached set is never stale.
_POLICY_SETS: dict[tuple[str, str], PolicySet] = {}
_POLICY_SETS_SIZE = 2_000


def policy_set_from_json(policies: str, calendars: str) -> PolicySet:
    """The policy set of an account from its rows as JSON text (``json_agg`` of the tables)."""
    key = (policies, calendars)
    cached = _POLICY_SETS.get(key)
    if cached is not None:
        return cached
    rows = sorted((SimpleNamespace(**row) for row in json.loads(policies)), key=_policy_order)
    calendar_rows = {row["id"]: SimpleNamespace(**row) for row in json.loads(calendars)}
    policy_set = PolicySet(rows, calendar_rows)
    if len(_POLICY_SETS) >= _POLICY_SETS_SIZE:
        _POLICY_SETS.pop(next(iter(_POLICY_SETS)))
    _POLICY_SETS[key] = policy_set
    return policy_set


def _policy_order(row: Any) -> tuple[Any, ...]:
    """As ``SlaPolicyRepository.all``: priority policies by severity, then conditional ones by order."""
    severity = PRIORITY_SEVERITY.get(Priority(row.priority), 0) if row.priority else 0
    return (row.conditions is not None, -severity, row.position, row.id)


class SlaPolicyResolver:
    """Which policy applies to a ticket, from the account's rows (one query for the policies, one
    for the calendars); the first call for an account also seeds the default per-priority policies."""

    def __init__(self, session: AsyncSession) -> None:
        self.policies = SlaPolicyRepository(session)

    async def policy_set(self, account_id: int) -> PolicySet:
        rows = await self.policies.all(account_id)
        if not any(row.conditions is None for row in rows):
            await self.policies.ensure_defaults(account_id)
            rows = await self.policies.all(account_id)
        calendar_ids = {row.calendar_id for row in rows if row.calendar_id is not None}
        return PolicySet(rows, await self.policies.calendars(account_id, calendar_ids))

    async def for_ticket(self, account_id: int, facts: sla.TicketFacts) -> sla.SlaPolicy:
        return (await self.policy_set(account_id)).for_ticket(facts)


# -- settings -------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(timezone.utc)


def _bump(row: Any, changed: bool) -> None:
    if changed:
        row.version += 1
        row.updated_at = _now()


def _check_version(row: Any, expected: int | None, what: str) -> None:
    if expected is not None and expected != row.version:
        raise VersionConflict(f"{what} is at version {row.version}, not {expected}; reload and retry",
                              details=[{"field": "version", "message": f"current version is {row.version}"}])


def _calendar_record(row: SlaCalendar) -> SlaCalendarRecord:
    return SlaCalendarRecord.model_validate(row)


def _policy_record(row: SlaPolicy) -> SlaPolicyRecord:
    conditional = row.conditions is not None
    return SlaPolicyRecord(
        id=row.id, name=row.name, priority=Priority(row.priority) if row.priority else None,
        conditions=conditions_of(row), order=row.position if conditional else None,
        first_response_minutes=row.first_response_minutes, resolution_minutes=row.resolution_minutes,
        at_risk_percent=row.at_risk_percent, calendar_id=row.calendar_id,
        pause_statuses=[TicketStatus(s) for s in row.pause_statuses], enabled=row.enabled,
        version=row.version, created_at=row.created_at, updated_at=row.updated_at,
    )


class SlaSettingsService:
    """Policies and calendars of one account (the API's side)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.policies = SlaPolicyRepository(session)
        self.calendars = SlaCalendarRepository(session)

    # calendars

    @staticmethod
    def validate_calendar(values: dict[str, Any]) -> BusinessCalendar:
        try:
            calendar = BusinessCalendar(
                timezone=values["timezone"], weekly_hours=values["weekly_hours"],
                holidays=values.get("holidays") or [], holiday_country=values.get("holiday_country"),
            )
        except ValidationError as error:
            raise _validation_failed(error, "calendar") from None
        if not calendar.has_open_time:
            raise ValidationFailed("a calendar needs at least one open window",
                                   details=[{"field": "weeklyHours", "message": "no open window on any day"}])
        return calendar

    def _store_calendar(self, row: SlaCalendar, calendar: BusinessCalendar) -> None:
        row.timezone = calendar.timezone
        row.weekly_hours = {day: [list(w) for w in windows] for day, windows in calendar.weekly_hours.items()}
        row.holidays = sorted(set(calendar.holidays))
        row.holiday_country = calendar.holiday_country

    async def _calendar_row(self, account_id: int, calendar_id: int) -> SlaCalendar:
        row = await self.calendars.get(account_id, calendar_id)
        if row is None:
            raise NotFound(f"SLA calendar {calendar_id} not found")
        return row

    async def calendar(self, account_id: int, calendar_id: int) -> SlaCalendarRecord:
        return _calendar_record(await self._calendar_row(account_id, calendar_id))

    async def list_calendars(self, account_id: int, *, page: int,
                             page_size: int) -> tuple[list[SlaCalendarRecord], int]:
        rows, total = await self.calendars.list(account_id, page=page, page_size=page_size)
        return [_calendar_record(row) for row in rows], total

    async def create_calendar(self, account_id: int, values: dict[str, Any]) -> SlaCalendarRecord:
        calendar = self.validate_calendar(values)
        row = SlaCalendar(account_id=account_id, name=values["name"])
        self._store_calendar(row, calendar)
        return _calendar_record(await self.calendars.add(row))

    async def update_calendar(self, account_id: int, calendar_id: int, values: dict[str, Any],
                              expected_version: int | None) -> SlaCalendarRecord:
        row = await self._calendar_row(account_id, calendar_id)
        _check_version(row, expected_version, "the calendar")
        current = {"timezone": row.timezone, "weekly_hours": row.weekly_hours, "holidays": row.holidays,
                   "holiday_country": row.holiday_country}
        merged = {**current, **{k: v for k, v in values.items() if k != "name"}}
        calendar = self.validate_calendar(merged)
        for policy in await self.policies.all(account_id):
            if policy.calendar_id == row.id:
                _check_reachable(policy, calendar, field="weeklyHours")
        before = (row.name, row.timezone, row.weekly_hours, list(row.holidays), row.holiday_country)
        if "name" in values:
            row.name = values["name"]
        self._store_calendar(row, calendar)
        _bump(row, before != (row.name, row.timezone, row.weekly_hours, list(row.holidays), row.holiday_country))
        await self.session.flush()
        return _calendar_record(row)

    async def delete_calendar(self, account_id: int, calendar_id: int) -> None:
        row = await self._calendar_row(account_id, calendar_id)
        users = await self.calendars.policies_using(row.id)
        if users:
            raise Conflict(f"the calendar is used by SLA policies {', '.join(map(str, users))}; "
                           "point them at another calendar first", code="calendar_in_use")
        await self.calendars.delete(row)

    # policies

    async def _policy_rows(self, account_id: int) -> list[SlaPolicy]:
        rows = await self.policies.all(account_id)
        if not any(row.conditions is None for row in rows):
            await self.policies.ensure_defaults(account_id)
            rows = await self.policies.all(account_id)
        return rows

    async def _policy_row(self, account_id: int, reference: str) -> SlaPolicy:
        """A policy by id, or the priority policy by priority name."""
        if reference.isascii() and reference.isdigit():
            policy_id = parse_id(reference)  # past bigint: no such policy
            row = await self.policies.get(account_id, policy_id) if policy_id is not None else None
        elif reference in {p.value for p in Priority}:
            await self._policy_rows(account_id)
            row = await self.policies.for_priority(account_id, Priority(reference))
        else:
            row = None
        if row is None:
            raise NotFound(f"SLA policy {reference} not found")
        return row

    async def list_policies(self, account_id: int) -> list[SlaPolicyRecord]:
        return [_policy_record(row) for row in await self._policy_rows(account_id)]

    async def policy(self, account_id: int, reference: str) -> SlaPolicyRecord:
        """A policy by id, or the priority policy by priority name."""
        return _policy_record(await self._policy_row(account_id, reference))

    async def _check_calendar(self, account_id: int, values: dict[str, Any]) -> None:
        calendar_id = values.get("calendar_id")
        if calendar_id is not None and await self.calendars.get(account_id, calendar_id) is None:
            raise ValidationFailed("unknown calendar",
                                   details=[{"field": "calendarId", "message": f"no SLA calendar with id {calendar_id}"}])

    def _apply(self, row: SlaPolicy, values: dict[str, Any]) -> bool:
        changed = False
        if "order" in values:
            values["position"] = values.pop("order")
        if "pause_statuses" in values:
            values["pause_statuses"] = [TicketStatus(s).value for s in dict.fromkeys(values["pause_statuses"])]
        if "conditions" in values and values["conditions"] is not None:
            values["conditions"] = sla.PolicyConditions.model_validate(values["conditions"]).model_dump(
                exclude_none=True, mode="json")
        for field, value in values.items():
            if getattr(row, field) != value:
                setattr(row, field, value)
                changed = True
        return changed

    async def _validate(self, account_id: int, row: SlaPolicy) -> None:
        """The stored fields must make a valid domain policy (pause statuses, percent …) whose
        targets its calendar can reach."""
        try:
            policy_of(row, None)
        except ValidationError as error:
            raise _validation_failed(error, "SLA policy") from None
        if row.calendar_id is not None:
            calendar_row = await self.calendars.get(account_id, row.calendar_id)
            _check_reachable(row, calendar_of(calendar_row) if calendar_row is not None else None)

    async def put_policy(self, account_id: int, reference: str, values: dict[str, Any],
                         expected_version: int | None) -> SlaPolicyRecord:
        row = await self._policy_row(account_id, reference)
        _check_version(row, expected_version, "the SLA policy")
        if row.conditions is None and ({"conditions", "enabled"} & values.keys()):
            field = "conditions" if "conditions" in values else "enabled"
            raise ValidationFailed(f"{field} applies to conditional policies only; a priority policy always applies",
                                   details=[{"field": field, "message": "not allowed on a priority policy"}])
        if row.conditions is not None and "conditions" in values and not values["conditions"]:
            raise ValidationFailed("a conditional policy needs conditions",
                                   details=[{"field": "conditions", "message": "must not be empty"}])
        await self._check_calendar(account_id, values)
        changed = self._apply(row, dict(values))
        await self._validate(account_id, row)
        _bump(row, changed)
        await self.session.flush()
        return _policy_record(row)

    async def put_priority_policies(self, account_id: int, items: list[dict[str, Any]]) -> list[SlaPolicyRecord]:
        seen: set[str] = set()
        for index, item in enumerate(items):
            priority = Priority(item["priority"]).value
            if priority in seen:
                raise ValidationFailed("one entry per priority",
                                       details=[{"field": f"{index}.priority", "message": f"{priority} given twice"}])
            seen.add(priority)
        for item in items:
            values = dict(item)
            priority = Priority(values.pop("priority")).value
            expected = values.pop("version", None)
            await self.put_policy(account_id, priority, values, expected)
        return await self.list_policies(account_id)

    async def create_policy(self, account_id: int, values: dict[str, Any]) -> SlaPolicyRecord:
        if not values.get("conditions"):
            raise ValidationFailed("a new policy needs conditions (the priority policies exist already: PUT them)",
                                   details=[{"field": "conditions", "message": "required"}])
        await self._policy_rows(account_id)  # the priority policies exist before any conditional one
        await self._check_calendar(account_id, values)
        row = SlaPolicy(account_id=account_id, name=values.pop("name"), priority=None, position=0,
                        first_response_minutes=0, resolution_minutes=0, at_risk_percent=sla.DEFAULT_AT_RISK_PERCENT,
                        pause_statuses=[s.value for s in sla.DEFAULT_PAUSE_STATUSES], enabled=True, version=1)
        self._apply(row, values)
        await self._validate(account_id, row)
        if sla.PolicyConditions.model_validate(row.conditions).is_empty():
            raise ValidationFailed("a conditional policy needs at least one condition",
                                   details=[{"field": "conditions", "message": "no condition given"}])
        return _policy_record(await self.policies.add(row))

    async def delete_policy(self, account_id: int, reference: str) -> None:
        row = await self._policy_row(account_id, reference)
        if row.conditions is None:
            raise Conflict("a priority policy cannot be deleted; PUT new targets instead", code="policy_required")
        await self.policies.delete(row)


# -- compliance -----------------------------------------------------------------------------------

def _rate(met: int, breached: int) -> float | None:
    decided = met + breached
    return round(100.0 * met / decided, 2) if decided else None


def _average(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _render_aggregates(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalTickets": row["total"],
        "firstResponse": {"met": row["first_response_met"], "breached": row["first_response_breached"],
                          "complianceRate": _rate(row["first_response_met"], row["first_response_breached"])},
        "resolution": {"met": row["resolution_met"], "breached": row["resolution_breached"],
                       "complianceRate": _rate(row["resolution_met"], row["resolution_breached"])},
        "averageFirstResponseTime": _average(row["average_first_response_time"]),
        "averageResolutionTime": _average(row["average_resolution_time"]),
    }


def _group_key(group_by: str, key: Any) -> dict[str, Any]:
    if group_by == "day":
        return {"date": key.date().isoformat()}
    if group_by == "week":
        return {"week": key.date().isoformat()}
    if group_by == "priority":
        return {"priority": key}
    return {"teamId": key}


class ComplianceService:
    """``GET /api/sla/compliance``: two aggregate queries over one covering index."""

    def __init__(self, session: AsyncSession) -> None:
        self.compliance = ComplianceRepository(session)

    async def report(self, account_id: int, start: datetime, end: datetime, *, priorities: list[Priority] | None,
                     team_id: int | None, group_by: str | None) -> dict[str, Any]:
        totals = await self.compliance.totals(account_id, start, end, priorities=priorities, team_id=team_id)
        body = {"from": start.isoformat().replace("+00:00", "Z"), "to": end.isoformat().replace("+00:00", "Z"),
                **_render_aggregates(totals), "breakdown": []}
        if group_by:
            rows = await self.compliance.breakdown(account_id, start, end, group_by, priorities=priorities,
                                                   team_id=team_id)
            body["groupBy"] = group_by
            body["breakdown"] = [{**_group_key(group_by, row["key"]), **_render_aggregates(row)} for row in rows]
        return body


def parse_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``from``/``to`` as dates (``to`` inclusive: the whole day) or ISO instants; default: the last
    30 days."""

    def parse(value: str, field: str, *, end_of_day: bool) -> datetime:
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                moment = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
                return moment + timedelta(days=1) if end_of_day else moment
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
            raise ValidationFailed(f"{field} must be a date (YYYY-MM-DD) or an ISO-8601 instant",
                                   details=[{"field": field, "message": "not a date or instant"}]) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    to = parse(end, "to", end_of_day=True) if end else now
    since = parse(start, "from", end_of_day=False) if start else to - timedelta(days=30)
    if since >= to:
        raise ValidationFailed("from must be before to", details=[{"field": "from", "message": "not before to"}])
    return since, to
