"""Ticket reports (spec §7), the pure part: what a status change counts for, the buckets of a
report in a time zone, and the rollup's 15-minute slots.

What counts (docs/decisions.md, "Reports"):

- ``created``: a ticket created in the bucket.
- ``resolved``: a *resolution* in the bucket (a change into ``resolved``, or a ticket created
  resolved). A ticket resolved, reopened and resolved again counts twice (once per resolution,
  in the bucket of each), so the buckets of a day report add up to the week's and month's.
- ``reopened``: a change from ``resolved`` back to a working status.
- ``closed``: a change into ``closed`` (also the close of a merged secondary), or a ticket
  created closed. Closed is final, so a ticket is closed at most once.
- ``backlog``: tickets open at the bucket's end (created before it, not resolved or closed then).
- Deleted tickets count nowhere (their whole history leaves every report, as they leave lists).

Every figure is a sum of *marks*: a ticket's creation and each of its status changes give a
mark with these counts and the change in backlog (+1 created open or reopened, −1 resolved or
closed from a working status). So ``backlog(end) = backlog(start) + Σ backlog_change`` in between.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Iterable, Self
from zoneinfo import ZoneInfo

from pulse.domain.calendar import _local_to_utc, is_iana_zone
from pulse.domain.errors import ValidationFailed
from pulse.domain.records import Ticket

DONE_STATUSES = frozenset({"resolved", "closed"})
GROUPS = ("day", "week", "month")
MAX_BUCKETS = 1000
# The rollup's slot: every offset of every IANA zone in use since 1980 is a multiple of 15 minutes,
# so a day, week or month in any zone starts on a slot boundary (else the report reads the history).
SLOT = timedelta(minutes=15)
SLOT_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


class Sums:
    """A frozen dataclass of integer counts that add up field by field."""

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, field.name) for field in fields(self))  # type: ignore[arg-type]

    def __add__(self, other: Self) -> Self:
        return type(self)(*(a + b for a, b in zip(self.values(), other.values())))

    def __neg__(self) -> Self:
        return type(self)(*(-value for value in self.values()))

    def is_zero(self) -> bool:
        return not any(self.values())

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Marks(Sums):
    created: int = 0
    resolved: int = 0
    reopened: int = 0
    closed: int = 0
    backlog_change: int = 0


COUNTS = tuple(field.name for field in fields(Marks))


def creation_marks(status: str) -> Marks:
    """A new ticket, created in ``status`` (a Maverick import may create it resolved or closed)."""
    return Marks(created=1, resolved=int(status == "resolved"), closed=int(status == "closed"),
                 backlog_change=int(status not in DONE_STATUSES))


def transition_marks(from_status: str, to_status: str) -> Marks:
    was_done, is_done = from_status in DONE_STATUSES, to_status in DONE_STATUSES
    return Marks(resolved=int(to_status == "resolved" and from_status != "resolved"),
                 reopened=int(from_status == "resolved" and not is_done),
                 closed=int(to_status == "closed" and from_status != "closed"),
                 backlog_change=(-1 if is_done and not was_done else 1 if was_done and not is_done else 0))


@dataclass(frozen=True)
class StatusMark:
    """A ticket's creation (``from_status`` None) or one of its status changes."""

    at: datetime
    from_status: str | None
    to_status: str

    def marks(self) -> Marks:
        if self.from_status is None:
            return creation_marks(self.to_status)
        return transition_marks(self.from_status, self.to_status)


def slot_of(at: datetime) -> datetime:
    """The start of the 15-minute UTC slot holding ``at``."""
    return SLOT_ORIGIN + SLOT * ((at - SLOT_ORIGIN) // SLOT)


def on_slot(at: datetime) -> bool:
    return (at - SLOT_ORIGIN) % SLOT == timedelta(0)


def day_of(at: datetime) -> datetime:
    """The start of the UTC day holding ``at`` (the rollup's coarse rows)."""
    return SLOT_ORIGIN + DAY * ((at - SLOT_ORIGIN) // DAY)


def on_day(at: datetime) -> bool:
    return (at - SLOT_ORIGIN) % DAY == timedelta(0)


def slot_marks(history: Iterable[StatusMark], *, sign: int = 1) -> dict[datetime, Marks]:
    """The marks of a ticket's history (or part of it) per slot, zero sums left out."""
    slots: dict[datetime, Marks] = {}
    for mark in history:
        slot = slot_of(mark.at)
        slots[slot] = slots.get(slot, Marks()) + (mark.marks() if sign > 0 else -mark.marks())
    return {slot: marks for slot, marks in slots.items() if not marks.is_zero()}


# -- the summary's rollup ------------------------------------------------------------------------------
# What the summary counts of a ticket, by its UTC creation day and each dimension the summary groups
# by. A write adds the difference between the ticket's figures after it and before it (usually
# none: only a creation, a delete, and changes of priority, team, category, SLA results, response
# times and escalations move them).

@dataclass(frozen=True)
class SummaryFigures(Sums):
    tickets: int = 0
    escalated: int = 0
    first_response_met: int = 0
    first_response_breached: int = 0
    resolution_met: int = 0
    resolution_breached: int = 0
    first_response_minutes: int = 0
    first_responses: int = 0
    resolution_minutes: int = 0
    resolutions: int = 0


SUMMARY_COUNTS = tuple(field.name for field in fields(SummaryFigures))

# (UTC creation day, dimension, value): value is the priority, the team or category id as text,
# "" for no team / no category and for the total.
SummaryKey = tuple[date, str, str]


def _figures(ticket: Ticket) -> SummaryFigures:
    return SummaryFigures(
        tickets=1, escalated=int(ticket.escalation_count > 0),
        first_response_met=int(ticket.sla_first_response_met is True),
        first_response_breached=int(ticket.sla_first_response_met is False),
        resolution_met=int(ticket.sla_resolution_met is True),
        resolution_breached=int(ticket.sla_resolution_met is False),
        first_response_minutes=ticket.first_response_time or 0, first_responses=int(ticket.first_response_time is not None),
        resolution_minutes=ticket.resolution_time or 0, resolutions=int(ticket.resolution_time is not None))


def summary_marks(ticket: Ticket | None) -> dict[SummaryKey, SummaryFigures]:
    """What ``ticket`` adds to the summary's rollup (nothing when deleted)."""
    if ticket is None or ticket.deleted_at is not None:
        return {}
    day, figures = ticket.created_at.astimezone(UTC).date(), _figures(ticket)
    return {(day, "total", ""): figures, (day, "priority", ticket.priority.value): figures,
            (day, "team", str(ticket.assigned_to_team_id or "")): figures,
            (day, "category", str(ticket.category_id or "")): figures}


def summary_change(before: Ticket | None, after: Ticket | None) -> dict[SummaryKey, SummaryFigures]:
    """The rollup rows a write moves, and by how much (zero changes left out)."""
    change: dict[SummaryKey, SummaryFigures] = {}
    for key, figures in summary_marks(before).items():
        change[key] = change.get(key, SummaryFigures()) + -figures
    for key, figures in summary_marks(after).items():
        change[key] = change.get(key, SummaryFigures()) + figures
    return {key: figures for key, figures in change.items() if not figures.is_zero()}


# -- the buckets of a report -------------------------------------------------------------------------

@dataclass(frozen=True)
class Bucket:
    period: date  # the local date the day / week (Monday) / month starts on
    start: datetime  # UTC, clipped to the report's range
    end: datetime


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def zone_named(name: str | None) -> ZoneInfo:
    if name is None or name == "UTC":
        return ZoneInfo("UTC")
    if len(name) > 64 or not is_iana_zone(name):
        raise _bad("timezone", "not an IANA time zone (e.g. Europe/Paris)")
    return ZoneInfo(name)


def _instant(value: str, field: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A date (local midnight in ``zone``; ``to`` includes the whole day) or an ISO-8601 instant
    (without an offset: wall time in ``zone``)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end_of_day:
                day += timedelta(days=1)
            return _local_to_utc(zone, datetime.combine(day, datetime.min.time()))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return _local_to_utc(zone, moment)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: past 9999-12-31 or before 0001-01-01 in UTC
        raise _bad(field, "not a date (YYYY-MM-DD) or ISO-8601 instant within the calendar") from None


def report_range(start: str | None, end: str | None, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """``[from, to)`` in UTC; default the last 30 days up to now."""
    to = _instant(end, "to", zone, end_of_day=True) if end else now
    if start:
        since = _instant(start, "from", zone, end_of_day=False)
    else:
        try:
            since = to - timedelta(days=30)
        except OverflowError:
            raise _bad("to", "too early to count 30 days back from") from None
    if since >= to:
        raise _bad("from", "must be before to")
    return since, to


def _next_period(period: date, group_by: str) -> date:
    if group_by == "day":
        return period + timedelta(days=1)
    if group_by == "week":
        return period + timedelta(days=7)
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def _period_of(day: date, group_by: str) -> date:
    if group_by == "day":
        return day
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets(since: datetime, until: datetime, group_by: str, zone: ZoneInfo) -> list[Bucket]:
    """The days, weeks (Monday to Sunday) or months of ``zone`` that ``[since, until)`` touches,
    each clipped to it. More than ``MAX_BUCKETS`` → 422."""
    if group_by not in GROUPS:
        raise _bad("groupBy", f"one of {', '.join(GROUPS)}")
    result: list[Bucket] = []
    try:
        period = _period_of(since.astimezone(zone).date(), group_by)
        start = since
        while start < until:
            following = _next_period(period, group_by)
            end = min(until, _local_to_utc(zone, datetime.combine(following, datetime.min.time())))
            result.append(Bucket(period=period, start=start, end=end))
            if len(result) > MAX_BUCKETS:
                raise _bad("groupBy", f"at most {MAX_BUCKETS} buckets: shorten the range or group by a longer period")
            period, start = following, end
    except (OverflowError, ValueError):  # a period past 9999-12-31
        raise _bad("to", "the range reaches the end of the calendar") from None
    return result
