"""Business-hours calendar arithmetic for SLA tracking.

Pure code: no I/O, no clock. Every instant passed in must be timezone-aware
(any zone; it is converted to UTC) and every instant returned is a UTC-aware
``datetime`` (the one exception: adding zero time returns ``start`` unchanged).

Model
-----
A :class:`BusinessCalendar` names an IANA time zone, weekly opening windows in
*local wall-clock time* (``"mon"`` .. ``"sun"`` -> list of ``("HH:MM", "HH:MM")``
half-open windows; ``"24:00"`` means the end of that day), explicit holiday
dates and optionally a country whose public holidays (from the ``holidays``
package, including its "observed" days) are closed too. A holiday closes the
whole local day. Passing ``None`` instead of a calendar means "open 24x7":
plain elapsed (UTC) time.

Every window ``[s, e)`` of a non-holiday local date ``d`` becomes one UTC
interval ``[U(d s), U(d e))`` where ``U`` maps a local wall-clock time to the
*first instant at which the wall clock reads that time or later*:

* an ordinary local time maps to its unique instant;
* an ambiguous local time (the repeated hour after a fall-back) maps to its
  first occurrence (``fold=0``);
* a nonexistent local time (inside a spring-forward gap) maps forward to the
  first instant after the gap, i.e. the transition itself. (We deliberately do
  not use the "pre-transition offset" reading of ``fold=0``, which would shift
  02:30 to 03:30 and could turn a short window such as 02:45-03:10 inside out.)

``U`` is monotone, so windows never invert, touching windows (09:00-12:00 +
12:00-17:00, or Sunday 22:00-24:00 + Monday 00:00-02:00) join without a gap
or overlap, and no instant is counted twice. Consequences:

* a window spanning a spring-forward gap has fewer real minutes (01:00-04:00
  on the US spring-forward day lasts 120 minutes); one spanning the fall-back
  repetition has more (the same window lasts 240 minutes in November);
* a window lying entirely inside a gap is empty;
* equivalently: an instant is open iff the *monotone* wall clock -- the latest
  local wall time shown so far, which does not rewind during a repeated
  hour -- falls inside an open window of a non-holiday day. The tests use that
  definition as an independent, minute-by-minute reference.

Searches that have no natural end (:func:`add_business_time`,
:func:`next_open`) look at most :data:`MAX_SEARCH_DAYS` local days ahead and
raise ``ValueError`` if the calendar has no open time there (or none at all).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any, Final, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_pkg
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

__all__ = [
    "DAY_NAMES",
    "MAX_SEARCH_DAYS",
    "BusinessCalendar",
    "add_business_minutes",
    "add_business_time",
    "business_minutes_between",
    "business_time_between",
    "is_open",
    "next_open",
    "open_intervals",
]

DAY_NAMES: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys of :attr:`BusinessCalendar.weekly_hours`, indexed like ``date.weekday()``."""

MAX_SEARCH_DAYS: Final[int] = 3660
"""How many local days (~10 years) open-ended searches scan before giving up."""

_MINUTES_PER_DAY: Final[int] = 24 * 60
_HHMM: Final = re.compile(r"(\d{2}):(\d{2})")
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_ONE_MINUTE: Final = timedelta(minutes=1)

_Window = tuple[int, int]  # [start, end) in minutes since local midnight, end <= 1440


def _parse_hhmm(value: str) -> int:
    """``"HH:MM"`` -> minutes since midnight; ``"24:00"`` -> 1440."""
    match = _HHMM.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid time {value!r}: expected 'HH:MM'")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"invalid time {value!r}: must be between 00:00 and 24:00")
    return hours * 60 + minutes


def _format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_day(day: str, windows: list[tuple[str, str]]) -> list[_Window]:
    """Parse one day's windows, sorted by start; reject empty/inverted/overlapping ones."""
    parsed: list[_Window] = []
    for start_text, end_text in windows:
        start, end = _parse_hhmm(start_text), _parse_hhmm(end_text)
        if start >= end:
            raise ValueError(f"{day}: window {start_text}-{end_text} must start before it ends")
        parsed.append((start, end))
    parsed.sort()
    for (prev_start, prev_end), (start, end) in pairwise(parsed):
        if start < prev_end:
            raise ValueError(
                f"{day}: windows {_format_hhmm(prev_start)}-{_format_hhmm(prev_end)} and "
                f"{_format_hhmm(start)}-{_format_hhmm(end)} overlap"
            )
    return parsed


def _merge_touching(windows: list[_Window]) -> tuple[_Window, ...]:
    """Join sorted, non-overlapping windows that touch (09-12 + 12-17 -> 09-17)."""
    merged: list[_Window] = []
    for start, end in windows:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


@lru_cache(maxsize=1024)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    """Public holidays (incl. observed days) of ``country`` that fall in ``year``."""
    return frozenset(holidays_pkg.country_holidays(country, years=year).keys())


# Names the zone files hold that are not places: the machine's own zone, tzdata's placeholder and
# the alternative trees (checked by name: workflow code validates calendars too, without listing
# directories).
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})
_NOT_ZONE_TREES = ("posix/", "right/")


def is_iana_zone(name: str) -> bool:
    """A real IANA zone (``Europe/Berlin``, ``UTC``): not the machine's ``localtime`` nor ``Factory``."""
    if name in _NOT_ZONES or name.startswith(_NOT_ZONE_TREES):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@cache
def iana_zone_names() -> tuple[str, ...]:
    """Every zone :func:`is_iana_zone` accepts, sorted (for the API's schema)."""
    return tuple(sorted(name for name in available_timezones() if is_iana_zone(name)))


@cache
def holiday_country_codes() -> tuple[str, ...]:
    """The countries whose public holidays a calendar can follow (``holidayCountry``)."""
    return tuple(sorted(holidays_pkg.list_supported_countries()))


class BusinessCalendar(BaseModel):
    """Weekly business hours in a time zone, minus holidays. Immutable.

    ``weekly_hours`` is normalised on validation: keys lower-cased and ordered
    Monday..Sunday, times rendered ``"HH:MM"``, each day's windows sorted.
    Missing days are closed. Windows of one day may touch but not overlap.
    Equal calendars are equal and hash alike, so they can serve as cache keys.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    weekly_hours: dict[str, list[tuple[str, str]]]
    holidays: list[date] = []
    holiday_country: str | None = None

    _zone: ZoneInfo = PrivateAttr()
    _day_windows: tuple[tuple[_Window, ...], ...] = PrivateAttr()
    _holiday_dates: frozenset[date] = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if not is_iana_zone(value):
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _check_weekly_hours(
        cls, value: dict[str, list[tuple[str, str]]]
    ) -> dict[str, list[tuple[str, str]]]:
        by_day: dict[str, list[tuple[str, str]]] = {}
        for raw_day, windows in value.items():
            day = raw_day.strip().lower()
            if day not in DAY_NAMES:
                raise ValueError(
                    f"unknown weekday {raw_day!r}: expected one of {', '.join(DAY_NAMES)}"
                )
            if day in by_day:
                raise ValueError(f"weekday {day!r} given more than once")
            by_day[day] = [
                (_format_hhmm(start), _format_hhmm(end)) for start, end in _parse_day(day, windows)
            ]
        return {day: by_day[day] for day in DAY_NAMES if day in by_day}

    @field_validator("holiday_country")
    @classmethod
    def _check_holiday_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        try:
            holidays_pkg.country_holidays(code)
        except NotImplementedError as exc:
            raise ValueError(f"no public-holiday data for country {value!r}") from exc
        return code

    def model_post_init(self, context: Any, /) -> None:
        """Precompute the zone, per-weekday windows (in minutes) and holiday set."""
        self._zone = ZoneInfo(self.timezone)
        self._day_windows = tuple(
            _merge_touching(_parse_day(day, self.weekly_hours.get(day, []))) for day in DAY_NAMES
        )
        self._holiday_dates = frozenset(self.holidays)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy; with ``update`` the result is re-validated (and re-derived) from scratch."""
        if update:
            return self.model_validate({**self.model_dump(), **update})
        return super().model_copy(deep=deep)

    def __hash__(self) -> int:
        return hash(self.model_dump_json())

    @classmethod
    def always_open(cls) -> Self:
        """A 24x7 calendar (UTC, every day 00:00-24:00); same results as ``None``."""
        return cls(
            timezone="UTC",
            weekly_hours={day: [("00:00", "24:00")] for day in DAY_NAMES},
        )

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._zone

    @property
    def has_open_time(self) -> bool:
        """Whether any weekday has an opening window at all."""
        return any(self._day_windows)

    def is_holiday(self, day: date) -> bool:
        """Whether the local date ``day`` is closed as a holiday."""
        if day in self._holiday_dates:
            return True
        return self.holiday_country is not None and day in _public_holidays(
            self.holiday_country, day.year
        )

    def windows_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """Open windows of local date ``day`` as (start, end) minutes after midnight.

        Touching windows are merged; empty on holidays and closed weekdays.
        """
        windows = self._day_windows[day.weekday()]
        if not windows or self.is_holiday(day):
            return ()
        return windows


# --- helpers ---------------------------------------------------------------------------------


def _as_utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _wall_time(zone: ZoneInfo, instant: datetime) -> datetime:
    """Naive local wall-clock reading of a UTC instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _local_to_utc(zone: ZoneInfo, wall: datetime) -> datetime:
    """First instant at which the wall clock in ``zone`` reads ``wall`` or later.

    Ambiguous times resolve to their first occurrence; times inside a
    spring-forward gap resolve to the transition instant (end of the gap).
    """
    candidate = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall_time(zone, candidate) == wall:
        return candidate
    # ``wall`` is in a gap. fold=0 read it with the pre-transition offset
    # (an instant at/after the transition), fold=1 with the post-transition
    # offset (an instant before it). Bisect, in whole seconds, for the first
    # instant whose wall reading is >= ``wall``: that is the transition.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # reads earlier than wall
    low, high = 0, int((candidate - before).total_seconds())  # offsets from ``before``
    while high - low > 1:  # invariant: reading(low) < wall <= reading(high)
        middle = (low + high) // 2
        if _wall_time(zone, before + timedelta(seconds=middle)) >= wall:
            high = middle
        else:
            low = middle
    return before + timedelta(seconds=high)


def _last_day(first: date, days: int) -> date:
    try:
        return first + timedelta(days=days)
    except OverflowError:
        return date.max


def _open_pieces(
    calendar: BusinessCalendar, start: datetime, end: datetime | None
) -> Iterator[tuple[datetime, datetime]]:
    """Non-empty open UTC pieces clipped to ``[start, end)``, ascending, disjoint.

    Pieces come one per (merged) window per day, so consecutive pieces may
    touch. With ``end=None`` the scan covers :data:`MAX_SEARCH_DAYS` local days.
    """
    zone = calendar.zone
    start_day = _wall_time(zone, start).date()
    # Earlier days cannot contribute: their windows end by U(start_day 00:00),
    # which is <= start because start's wall reading is on start_day. Around a
    # backwards shift the last contributing day may be the one after the local
    # date of ``end``, hence the one-day margin there.
    day = start_day
    if end is None:
        last_day = _last_day(start_day, MAX_SEARCH_DAYS)
    else:
        last_day = _last_day(_wall_time(zone, end).date(), 1)
    while True:
        windows = calendar.windows_on(day)
        if windows:
            midnight = datetime.combine(day, time())
            for window_start, window_end in windows:
                low = _local_to_utc(zone, midnight + timedelta(minutes=window_start))
                if end is not None and low >= end:
                    return
                high = _local_to_utc(zone, midnight + timedelta(minutes=window_end))
                low = max(low, start)
                if end is not None:
                    high = min(high, end)
                if low < high:
                    yield low, high
        if day >= last_day:
            return
        day += timedelta(days=1)


def _require_open_time(calendar: BusinessCalendar) -> None:
    if not calendar.has_open_time:
        raise ValueError("calendar has no opening hours on any weekday")


# --- public API ------------------------------------------------------------------------------


def open_intervals(
    calendar: BusinessCalendar | None, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Maximal open UTC intervals within ``[start, end)``, clipped to it, ascending.

    Touching windows (also across midnight / days) are merged into a single
    interval, so consecutive results are separated by closed time. Yields
    nothing if ``end <= start``. Arguments are validated eagerly.
    """
    start_utc, end_utc = _as_utc("start", start), _as_utc("end", end)
    return _merged_intervals(calendar, start_utc, end_utc)


def _merged_intervals(
    calendar: BusinessCalendar | None, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    if end <= start:
        return
    if calendar is None:
        yield start, end
        return
    current: tuple[datetime, datetime] | None = None
    for low, high in _open_pieces(calendar, start, end):
        if current is not None and low <= current[1]:
            current = (current[0], max(current[1], high))
            continue
        if current is not None:
            yield current
        current = (low, high)
    if current is not None:
        yield current


def business_time_between(calendar: BusinessCalendar | None, a: datetime, b: datetime) -> timedelta:
    """Exact open time within ``[a, b)``; ``timedelta(0)`` if ``b <= a``."""
    start, end = _as_utc("a", a), _as_utc("b", b)
    if end <= start:
        return timedelta(0)
    if calendar is None:
        return end - start
    return sum((high - low for low, high in _open_pieces(calendar, start, end)), timedelta(0))


def business_minutes_between(calendar: BusinessCalendar | None, a: datetime, b: datetime) -> float:
    """Open minutes within ``[a, b)`` (0.0 if ``b <= a``); see :func:`business_time_between`."""
    return business_time_between(calendar, a, b) / _ONE_MINUTE


def add_business_time(
    calendar: BusinessCalendar | None, start: datetime, amount: timedelta
) -> datetime:
    """The instant at which ``amount`` of open time has elapsed since ``start``.

    Counting starts at ``start`` if it is open, else at the next opening. The
    result is the instant the last unit of open time *completes*: if that is
    the end of a window, the result is that closing instant (not the next
    opening). ``amount == 0`` returns ``start`` unchanged.

    Raises ``ValueError`` for a negative amount, a calendar without opening
    hours, or if the amount is not reached within :data:`MAX_SEARCH_DAYS`.
    """
    start_utc = _as_utc("start", start)
    if amount < timedelta(0):
        raise ValueError(f"amount must not be negative, got {amount!r}")
    if not amount:
        return start
    if calendar is None:
        return start_utc + amount
    _require_open_time(calendar)
    remaining = amount
    for low, high in _open_pieces(calendar, start_utc, None):
        span = high - low
        if remaining <= span:
            return low + remaining
        remaining -= span
    raise ValueError(
        f"not enough business time within {MAX_SEARCH_DAYS} days of {start_utc.isoformat()}"
    )


def add_business_minutes(
    calendar: BusinessCalendar | None, start: datetime, minutes: float
) -> datetime:
    """:func:`add_business_time` with an amount in (possibly fractional) minutes.

    The amount is rounded to whole microseconds. ``minutes`` must be finite
    and non-negative; ``0`` returns ``start`` unchanged.
    """
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"minutes must be a finite, non-negative number, got {minutes!r}")
    return add_business_time(calendar, start, timedelta(minutes=minutes))


def is_open(calendar: BusinessCalendar | None, instant: datetime) -> bool:
    """Whether ``instant`` lies inside an open window (window ends are closed)."""
    moment = _as_utc("instant", instant)
    if calendar is None:
        return True
    return any(True for _ in _open_pieces(calendar, moment, moment + _ONE_MICROSECOND))


def next_open(calendar: BusinessCalendar | None, instant: datetime) -> datetime:
    """``instant`` (in UTC) if it is open, else the start of the next open window.

    Raises ``ValueError`` if there is no open time within :data:`MAX_SEARCH_DAYS`.
    """
    moment = _as_utc("instant", instant)
    if calendar is None:
        return moment
    _require_open_time(calendar)
    for low, _high in _open_pieces(calendar, moment, None):
        return low
    raise ValueError(f"no open time within {MAX_SEARCH_DAYS} days of {moment.isoformat()}")
