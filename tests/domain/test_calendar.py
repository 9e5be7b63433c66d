"""Business-hours calendar math: examples, validation, and property tests.

The property tests compare the implementation against a deliberately naive
reference that walks minute by minute over whole-minute UTC instants and asks,
from first principles, "is this minute open?": it converts the minute's start
to local wall-clock time and checks weekday, holidays and the raw (unsorted,
unmerged) windows. The only DST subtlety it encodes is the documented one: the
business clock does not rewind during a repeated fall-back hour, i.e. a minute
is judged by the latest wall time shown so far (the "monotone wall clock").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pulse.domain.calendar import (
    DAY_NAMES,
    MAX_SEARCH_DAYS,
    BusinessCalendar,
    add_business_minutes,
    add_business_time,
    business_minutes_between,
    business_time_between,
    is_open,
    next_open,
    open_intervals,
)

NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
WEEKDAYS_9_TO_5 = {day: [("09:00", "17:00")] for day in ("mon", "tue", "wed", "thu", "fri")}


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def nine_to_five(**kwargs: object) -> BusinessCalendar:
    return BusinessCalendar(timezone="America/New_York", weekly_hours=WEEKDAYS_9_TO_5, **kwargs)


# --- reference model -------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSpec:
    """A calendar as raw data, shared by the implementation and the reference."""

    timezone: str
    windows: dict[str, tuple[tuple[int, int], ...]]  # minutes since midnight, raw order
    holidays: frozenset[date]
    holiday_country: str | None

    def build(self) -> BusinessCalendar:
        def hhmm(minutes: int) -> str:
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        return BusinessCalendar(
            timezone=self.timezone,
            weekly_hours={
                day: [(hhmm(start), hhmm(end)) for start, end in windows]
                for day, windows in self.windows.items()
            },
            holidays=sorted(self.holidays),
            holiday_country=self.holiday_country,
        )


@cache
def reference_public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays_pkg.country_holidays(country, years=year))


def reference_wall_time_is_open(spec: CalendarSpec, wall: datetime) -> bool:
    day = wall.date()
    if day in spec.holidays:
        return False
    if spec.holiday_country and day in reference_public_holidays(spec.holiday_country, day.year):
        return False
    minute_of_day = wall.hour * 60 + wall.minute
    windows = spec.windows.get(DAY_NAMES[day.weekday()], ())
    return any(start <= minute_of_day < end for start, end in windows)


def reference_open_minutes(spec: CalendarSpec, start: datetime, count: int) -> list[bool]:
    """Open/closed flag of each minute [start + i min, start + (i+1) min), i < count.

    ``start`` must be whole-minute aligned. A day of warm-up establishes the
    latest wall time seen before ``start``.
    """
    zone = ZoneInfo(spec.timezone)
    warm_up = 24 * 60
    instant = start - warm_up * MINUTE
    latest: datetime | None = None
    flags: list[bool] = []
    for index in range(warm_up + count):
        wall = instant.astimezone(zone).replace(tzinfo=None)
        if latest is None or wall > latest:
            latest = wall
        if index >= warm_up:
            flags.append(reference_wall_time_is_open(spec, latest))
        instant += MINUTE
    return flags


# --- strategies ------------------------------------------------------------------------------

TIMEZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "UTC",
]

# UTC instants of DST transitions (and a few ordinary/holiday-heavy dates),
# each with the zone it matters for.
ANCHORS: list[tuple[datetime, str]] = [
    (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York"),  # spring forward
    (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), "America/New_York"),  # fall back
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/Berlin"),  # EU spring forward
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/London"),
    (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "Europe/Berlin"),  # EU fall back
    (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "Europe/London"),
    (datetime(2026, 4, 4, 16, 0, tzinfo=UTC), "Australia/Sydney"),  # fall back, Easter
    (datetime(2026, 10, 3, 16, 0, tzinfo=UTC), "Australia/Sydney"),  # spring forward
    (datetime(2026, 12, 24, 12, 0, tzinfo=UTC), "America/New_York"),  # Christmas
    (datetime(2026, 1, 14, 0, 0, tzinfo=UTC), "Asia/Kolkata"),  # nothing special
]

# Boundaries biased towards DST-relevant hours (00:00-04:00 local covers every
# gap and repeated hour above), day edges and office hours.
BOUNDARY = st.one_of(
    st.sampled_from([0, 60, 90, 120, 150, 180, 210, 240, 540, 720, 780, 1020, 1320, 1380, 1440]),
    st.integers(0, 4 * 60),
    st.integers(0, 24 * 60),
)


# Every transition above happens on a Sunday between 00:00 and 04:00 local.
TRANSITION_HOURS = st.integers(0, 4 * 60)
ANY_ZONE = st.sampled_from(TIMEZONES)


@st.composite
def day_windows(
    draw: st.DrawFn, boundaries: st.SearchStrategy[int] = BOUNDARY
) -> tuple[tuple[int, int], ...]:
    """Non-overlapping windows, possibly touching, in random order."""
    points = sorted(set(draw(st.lists(boundaries, min_size=2, max_size=6))))
    windows = [segment for segment in pairwise(points) if draw(st.booleans())]
    return tuple(draw(st.permutations(windows)))


FULL_DAY = st.just(((0, 24 * 60),))
ANY_DAY = st.one_of(day_windows(), FULL_DAY)
# Sundays often get windows whose edges fall into DST gaps and repeated hours.
SUNDAY = st.one_of(day_windows(TRANSITION_HOURS), ANY_DAY)


@st.composite
def calendar_specs(
    draw: st.DrawFn, around: date, timezones: st.SearchStrategy[str] = ANY_ZONE
) -> CalendarSpec:
    windows: dict[str, tuple[tuple[int, int], ...]] = {}
    for day in DAY_NAMES:
        if draw(st.integers(0, 3)):  # else: day missing = closed
            windows[day] = draw(SUNDAY if day == "sun" else ANY_DAY)
    offsets = draw(st.lists(st.integers(-2, 12), max_size=3))
    return CalendarSpec(
        timezone=draw(timezones),
        windows=windows,
        holidays=frozenset(around + timedelta(days=offset) for offset in offsets),
        holiday_country=draw(st.sampled_from([None, None, None, "US", "GB", "DE"])),
    )


MAX_SPAN_MINUTES = 10 * 24 * 60


@st.composite
def minute_cases(draw: st.DrawFn) -> tuple[CalendarSpec, datetime, int]:
    """(calendar, whole-minute UTC start, span in minutes up to 10 days)."""
    anchor, anchor_zone = draw(st.sampled_from(ANCHORS))
    offset = draw(st.one_of(st.integers(-2 * 24 * 60, 0), st.integers(-5 * 24 * 60, 2 * 24 * 60)))
    start = anchor + offset * MINUTE
    zones = st.one_of(st.just(anchor_zone), ANY_ZONE)
    spec = draw(calendar_specs(around=start.date(), timezones=zones))
    return spec, start, draw(st.integers(0, MAX_SPAN_MINUTES))


@st.composite
def dst_cases(draw: st.DrawFn) -> tuple[CalendarSpec, datetime, int]:
    """Like :func:`minute_cases`, focused on a transition: its own zone, its day, edgy windows."""
    anchor, zone = draw(
        st.sampled_from([anchor for anchor in ANCHORS if anchor[0].month in (3, 4, 10, 11)])
    )
    start = anchor + draw(st.integers(-30 * 60, 0)) * MINUTE
    spec = draw(calendar_specs(around=start.date(), timezones=st.just(zone)))
    sunday = draw(day_windows(TRANSITION_HOURS))
    spec = CalendarSpec(spec.timezone, {**spec.windows, "sun": sunday}, spec.holidays, None)
    return spec, start, draw(st.integers(0, 2 * 24 * 60))


@st.composite
def any_instants(draw: st.DrawFn) -> datetime:
    """Arbitrary (microsecond-resolution) instants near the anchors."""
    anchor, _zone = draw(st.sampled_from(ANCHORS))
    return anchor + timedelta(microseconds=draw(st.integers(-6 * 86_400_000_000, 86_400_000_000)))


# Budget: the whole file should run in well under 20 s.
REFERENCE_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
DST_SETTINGS = settings(max_examples=100, deadline=None)
FAST_SETTINGS = settings(max_examples=100, deadline=None)


# --- properties vs reference -----------------------------------------------------------------


@REFERENCE_SETTINGS
@given(minute_cases())
def test_business_minutes_between_matches_minute_by_minute_reference(
    case: tuple[CalendarSpec, datetime, int],
) -> None:
    spec, start, span = case
    flags = reference_open_minutes(spec, start, span)
    calendar = spec.build()

    assert business_minutes_between(calendar, start, start + span * MINUTE) == sum(flags)
    assert business_time_between(calendar, start, start + span * MINUTE) == sum(flags) * MINUTE


@REFERENCE_SETTINGS
@given(minute_cases(), st.data())
def test_add_business_minutes_ends_when_the_nth_open_minute_completes(
    case: tuple[CalendarSpec, datetime, int], data: st.DataObject
) -> None:
    spec, start, span = case
    flags = reference_open_minutes(spec, start, span)
    open_indices = [index for index, is_open_minute in enumerate(flags) if is_open_minute]
    calendar = spec.build()
    n = data.draw(st.integers(0, len(open_indices)), label="n")

    result = add_business_minutes(calendar, start, n)

    if n == 0:
        assert result == start
    else:
        nth_minute = open_indices[n - 1]
        assert result == start + (nth_minute + 1) * MINUTE
        # Half a minute less ends half-way through that same minute.
        assert add_business_minutes(calendar, start, n - 0.5) == start + (nth_minute + 0.5) * MINUTE


@REFERENCE_SETTINGS
@given(minute_cases())
def test_adding_the_business_minutes_between_a_and_b_returns_b_or_the_last_close_before_it(
    case: tuple[CalendarSpec, datetime, int],
) -> None:
    spec, a, span = case
    b = a + span * MINUTE
    flags = reference_open_minutes(spec, a, span)
    calendar = spec.build()

    result = add_business_minutes(calendar, a, business_minutes_between(calendar, a, b))

    if not any(flags):
        assert result == a  # adding zero returns the start unchanged
    else:
        last_open_minute = max(index for index, flag in enumerate(flags) if flag)
        assert result == a + (last_open_minute + 1) * MINUTE
        if flags[-1]:  # b is open or closes an open stretch
            assert result == b


@REFERENCE_SETTINGS
@given(minute_cases())
def test_open_intervals_are_the_maximal_open_runs_of_the_reference(
    case: tuple[CalendarSpec, datetime, int],
) -> None:
    spec, start, span = case
    end = start + span * MINUTE
    flags = reference_open_minutes(spec, start, span)
    expected_runs = []
    for index, flag in enumerate(flags):
        if flag and (index == 0 or not flags[index - 1]):
            expected_runs.append([index, index + 1])
        elif flag:
            expected_runs[-1][1] = index + 1

    intervals = list(open_intervals(spec.build(), start, end))

    assert intervals == [
        (start + first * MINUTE, start + last * MINUTE) for first, last in expected_runs
    ]
    assert all(low.tzinfo is UTC and high.tzinfo is UTC for low, high in intervals)


@REFERENCE_SETTINGS
@given(minute_cases(), st.data())
def test_is_open_and_next_open_agree_with_reference(
    case: tuple[CalendarSpec, datetime, int], data: st.DataObject
) -> None:
    spec, start, span = case
    span = max(span, 1)
    flags = reference_open_minutes(spec, start, span)
    calendar = spec.build()
    probes = data.draw(st.lists(st.integers(0, span - 1), min_size=1, max_size=8), label="probes")

    for index in probes:
        instant = start + index * MINUTE
        assert is_open(calendar, instant) == flags[index]
        assert is_open(calendar, instant + 30 * timedelta(seconds=1)) == flags[index]
        following = [later for later in range(index, span) if flags[later]]
        if following:
            assert next_open(calendar, instant) == start + following[0] * MINUTE
        elif calendar.has_open_time:
            assert next_open(calendar, instant) >= start + span * MINUTE


@DST_SETTINGS
@given(dst_cases(), st.data())
def test_dst_transition_days_match_minute_by_minute_reference(
    case: tuple[CalendarSpec, datetime, int], data: st.DataObject
) -> None:
    spec, start, span = case
    end = start + span * MINUTE
    flags = reference_open_minutes(spec, start, span)
    open_indices = [index for index, flag in enumerate(flags) if flag]
    calendar = spec.build()
    n = data.draw(st.integers(0, len(open_indices)), label="n")

    assert business_minutes_between(calendar, start, end) == len(open_indices)
    assert sum((high - low for low, high in open_intervals(calendar, start, end)), timedelta()) == (
        len(open_indices) * MINUTE
    )
    expected = start + (open_indices[n - 1] + 1) * MINUTE if n else start
    assert add_business_minutes(calendar, start, n) == expected


# --- properties (no reference) ---------------------------------------------------------------


def assert_genuinely_out_of_reach(
    calendar: BusinessCalendar, start: datetime, amount: timedelta
) -> None:
    """A deadline may only be refused if the search horizon really lacks the time."""
    horizon = start + timedelta(days=MAX_SEARCH_DAYS - 1)
    assert business_time_between(calendar, start, horizon) < amount


@FAST_SETTINGS
@given(
    spec=calendar_specs(around=date(2026, 6, 1)),
    start=any_instants(),
    minutes=st.one_of(
        st.integers(0, 50_000),
        st.floats(0, 50_000, allow_nan=False, allow_infinity=False),
    ),
)
def test_business_minutes_between_start_and_added_result_is_the_added_amount(
    spec: CalendarSpec, start: datetime, minutes: float
) -> None:
    calendar = spec.build()
    try:
        end = add_business_minutes(calendar, start, minutes)
    except ValueError:
        assert_genuinely_out_of_reach(calendar, start, timedelta(minutes=minutes))
        return

    assert end >= start
    assert math.isclose(business_minutes_between(calendar, start, end), minutes, abs_tol=1e-6)


@FAST_SETTINGS
@given(
    spec=calendar_specs(around=date(2026, 6, 1)),
    start=any_instants(),
    amount=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=30)),
)
def test_add_business_time_round_trips_exactly(
    spec: CalendarSpec, start: datetime, amount: timedelta
) -> None:
    calendar = spec.build()
    try:
        end = add_business_time(calendar, start, amount)
    except ValueError:
        assert_genuinely_out_of_reach(calendar, start, amount)
        return

    assert business_time_between(calendar, start, end) == amount
    # The amount completes exactly at ``end``: the last instant before it is open.
    assert is_open(calendar, end - timedelta(microseconds=1))


@FAST_SETTINGS
@given(start=any_instants(), minutes=st.integers(0, 100_000))
def test_always_open_calendar_behaves_like_no_calendar(start: datetime, minutes: int) -> None:
    always = BusinessCalendar.always_open()
    end = start + timedelta(days=3)

    assert add_business_minutes(always, start, minutes) == add_business_minutes(
        None, start, minutes
    )
    assert business_minutes_between(always, start, end) == business_minutes_between(
        None, start, end
    )
    assert list(open_intervals(always, start, end)) == list(open_intervals(None, start, end))
    assert is_open(always, start) and next_open(always, start) == start


# --- worked examples -------------------------------------------------------------------------


def test_friday_afternoon_plus_two_hours_is_monday_ten_am() -> None:
    assert add_business_minutes(nine_to_five(), ny(2026, 1, 9, 16, 0), 120) == ny(
        2026, 1, 12, 10, 0
    )


def test_holiday_monday_pushes_the_deadline_to_tuesday() -> None:
    calendar = nine_to_five(holidays=[date(2026, 1, 12)])

    assert add_business_minutes(calendar, ny(2026, 1, 9, 16, 0), 120) == ny(2026, 1, 13, 10, 0)


def test_lunch_break_is_skipped() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York",
        weekly_hours={"mon": [("13:00", "17:00"), ("09:00", "12:00")]},
    )

    assert add_business_minutes(calendar, ny(2026, 1, 12, 11, 0), 120) == ny(2026, 1, 12, 14, 0)
    assert business_minutes_between(calendar, ny(2026, 1, 12, 8, 0), ny(2026, 1, 12, 18, 0)) == 420


def test_start_outside_hours_counts_from_next_opening() -> None:
    assert add_business_minutes(nine_to_five(), ny(2026, 1, 10, 3, 0), 30) == ny(2026, 1, 12, 9, 30)


def test_deadline_on_a_window_end_is_the_closing_instant_not_the_next_opening() -> None:
    assert add_business_minutes(nine_to_five(), ny(2026, 1, 9, 16, 0), 60) == ny(2026, 1, 9, 17, 0)


def test_adding_zero_returns_start_unchanged() -> None:
    saturday = ny(2026, 1, 10, 3, 0)

    result = add_business_minutes(nine_to_five(), saturday, 0)

    assert result is saturday


def test_no_calendar_means_plain_elapsed_minutes_even_across_dst() -> None:
    start = ny(2026, 3, 8, 1, 30)  # an hour before the clocks jump

    result = add_business_minutes(None, start, 60)

    assert result == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert result.astimezone(NEW_YORK).hour == 3
    assert business_minutes_between(None, start, result) == 60
    assert result.tzinfo is UTC


def test_results_are_utc() -> None:
    result = add_business_minutes(nine_to_five(), ny(2026, 1, 9, 16, 0), 120)

    assert result.tzinfo is UTC
    assert result == datetime(2026, 1, 12, 15, 0, tzinfo=UTC)


def test_us_public_holidays_close_christmas_day() -> None:
    calendar = nine_to_five(holiday_country="us")

    assert calendar.holiday_country == "US"
    assert calendar.is_holiday(date(2026, 12, 25))
    assert not is_open(calendar, ny(2026, 12, 25, 10, 0))
    assert add_business_minutes(calendar, ny(2026, 12, 24, 16, 0), 120) == ny(2026, 12, 28, 10, 0)


def test_spring_forward_window_has_fewer_real_minutes() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"sun": [("01:00", "04:00")]}
    )

    assert business_minutes_between(calendar, ny(2026, 3, 8), ny(2026, 3, 9)) == 120
    assert business_minutes_between(calendar, ny(2026, 3, 1), ny(2026, 3, 2)) == 180


def test_fall_back_window_has_more_real_minutes() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"sun": [("01:00", "04:00")]}
    )

    assert business_minutes_between(calendar, ny(2026, 11, 1), ny(2026, 11, 2)) == 240


def test_window_inside_the_spring_forward_gap_is_empty() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"sun": [("02:15", "02:45")]}
    )

    assert business_minutes_between(calendar, ny(2026, 3, 8), ny(2026, 3, 9)) == 0


def test_window_starting_in_the_gap_opens_when_the_clocks_jump() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"sun": [("02:30", "05:00")]}
    )

    intervals = list(open_intervals(calendar, ny(2026, 3, 8), ny(2026, 3, 9)))

    assert intervals == [(ny(2026, 3, 8, 3, 0), ny(2026, 3, 8, 5, 0))]


def test_ambiguous_window_start_uses_first_occurrence_and_the_clock_does_not_rewind() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"sun": [("01:30", "02:00")]}
    )

    intervals = list(open_intervals(calendar, ny(2026, 11, 1), ny(2026, 11, 2)))

    # Opens at the first 01:30 (EDT) and closes at 02:00 EST, the only 02:00.
    assert intervals == [
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 7, 0, tzinfo=UTC))
    ]
    assert is_open(calendar, datetime(2026, 11, 1, 6, 15, tzinfo=UTC))  # 01:15 EST, second pass


def test_touching_windows_form_one_interval_within_a_day() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York", weekly_hours={"mon": [("12:00", "17:00"), ("09:00", "12:00")]}
    )

    intervals = list(open_intervals(calendar, ny(2026, 1, 12), ny(2026, 1, 13)))

    assert intervals == [(ny(2026, 1, 12, 9, 0), ny(2026, 1, 12, 17, 0))]


def test_touching_windows_form_one_interval_across_midnight() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    calendar = BusinessCalendar(
        timezone="Europe/Berlin",
        weekly_hours={"sun": [("22:00", "24:00")], "mon": [("00:00", "02:00")]},
    )

    intervals = list(
        open_intervals(
            calendar, datetime(2026, 1, 10, tzinfo=berlin), datetime(2026, 1, 13, tzinfo=berlin)
        )
    )

    assert intervals == [
        (datetime(2026, 1, 11, 21, 0, tzinfo=UTC), datetime(2026, 1, 12, 1, 0, tzinfo=UTC))
    ]
    assert add_business_minutes(calendar, datetime(2026, 1, 11, 22, 30, tzinfo=berlin), 120) == (
        datetime(2026, 1, 12, 0, 30, tzinfo=berlin)
    )


def test_open_intervals_are_clipped_to_the_requested_range() -> None:
    intervals = list(open_intervals(nine_to_five(), ny(2026, 1, 12, 10, 0), ny(2026, 1, 13, 12, 0)))

    assert intervals == [
        (ny(2026, 1, 12, 10, 0), ny(2026, 1, 12, 17, 0)),
        (ny(2026, 1, 13, 9, 0), ny(2026, 1, 13, 12, 0)),
    ]
    assert list(open_intervals(nine_to_five(), ny(2026, 1, 13), ny(2026, 1, 12))) == []


def test_is_open_treats_window_end_as_closed_and_start_as_open() -> None:
    calendar = nine_to_five()

    assert is_open(calendar, ny(2026, 1, 12, 9, 0))
    assert is_open(calendar, ny(2026, 1, 12, 16, 59, 59, 999999))
    assert not is_open(calendar, ny(2026, 1, 12, 17, 0))
    assert not is_open(calendar, ny(2026, 1, 10, 12, 0))


def test_next_open_returns_the_instant_itself_when_open() -> None:
    calendar = nine_to_five()

    assert next_open(calendar, ny(2026, 1, 12, 10, 0)) == ny(2026, 1, 12, 10, 0)
    assert next_open(calendar, ny(2026, 1, 9, 17, 0)) == ny(2026, 1, 12, 9, 0)


def test_business_minutes_between_is_zero_for_empty_or_reversed_ranges() -> None:
    calendar = nine_to_five()

    assert business_minutes_between(calendar, ny(2026, 1, 12, 10), ny(2026, 1, 12, 10)) == 0
    assert business_minutes_between(calendar, ny(2026, 1, 12, 11), ny(2026, 1, 12, 10)) == 0
    assert business_minutes_between(None, ny(2026, 1, 12, 11), ny(2026, 1, 12, 10)) == 0


def test_fractional_minutes_are_exact_to_the_microsecond() -> None:
    end = add_business_minutes(nine_to_five(), ny(2026, 1, 9, 16, 59), 1.5)

    assert end == ny(2026, 1, 12, 9, 0, 30)
    assert business_minutes_between(nine_to_five(), ny(2026, 1, 9, 16, 59), end) == 1.5


def test_a_million_business_minutes_is_computed_by_walking_windows() -> None:
    calendar = nine_to_five(holiday_country="US")
    start = ny(2026, 1, 9, 16, 0)

    end = add_business_minutes(calendar, start, 1_000_000)

    assert business_minutes_between(calendar, start, end) == 1_000_000
    assert end.year in (2034, 2035)


# --- errors and validation -------------------------------------------------------------------


def test_calendar_without_any_open_time_cannot_reach_a_deadline() -> None:
    closed = BusinessCalendar(timezone="UTC", weekly_hours={"mon": []})
    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert not closed.has_open_time
    with pytest.raises(ValueError, match="no opening hours"):
        add_business_minutes(closed, now, 1)
    with pytest.raises(ValueError, match="no opening hours"):
        next_open(closed, now)
    assert business_minutes_between(closed, now, now + timedelta(days=30)) == 0
    assert not is_open(closed, now)
    assert add_business_minutes(closed, now, 0) == now


def test_search_gives_up_after_about_ten_years() -> None:
    first_monday = date(2026, 1, 5)
    every_monday = [first_monday + timedelta(weeks=week) for week in range(52 * 11)]
    calendar = BusinessCalendar(
        timezone="UTC", weekly_hours={"mon": [("09:00", "17:00")]}, holidays=every_monday
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)

    with pytest.raises(ValueError, match="not enough business time"):
        add_business_minutes(calendar, start, 1)
    with pytest.raises(ValueError, match="no open time"):
        next_open(calendar, start)


@pytest.mark.parametrize("minutes", [-1, -0.5, math.nan, math.inf])
def test_negative_or_non_finite_minutes_are_rejected(minutes: float) -> None:
    with pytest.raises(ValueError):
        add_business_minutes(nine_to_five(), ny(2026, 1, 12, 10), minutes)


def test_negative_timedelta_is_rejected() -> None:
    with pytest.raises(ValueError):
        add_business_time(None, ny(2026, 1, 12, 10), timedelta(seconds=-1))


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_minutes(None, datetime(2026, 1, 12, 10), 5),
        lambda: business_minutes_between(None, datetime(2026, 1, 12), ny(2026, 1, 13)),
        lambda: open_intervals(None, ny(2026, 1, 12), datetime(2026, 1, 13)),
        lambda: is_open(None, datetime(2026, 1, 12)),
        lambda: next_open(None, datetime(2026, 1, 12)),
    ],
)
def test_naive_datetimes_are_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("weekly_hours", "message"),
    [
        ({"mon": [("09:00", "12:00"), ("11:00", "13:00")]}, "overlap"),
        ({"mon": [("09:00", "17:00"), ("09:00", "10:00")]}, "overlap"),
        ({"mon": [("10:00", "10:00")]}, "must start before it ends"),
        ({"mon": [("17:00", "09:00")]}, "must start before it ends"),
        ({"mon": [("24:00", "24:00")]}, "must start before it ends"),
        ({"funday": [("09:00", "17:00")]}, "unknown weekday"),
        ({"mon": [("9am", "17:00")]}, "invalid time"),
        ({"mon": [("09:00", "24:30")]}, "invalid time"),
        ({"mon": [("09:60", "17:00")]}, "invalid time"),
        ({"mon": [("09:00", "17:00")], "MON": [("18:00", "19:00")]}, "more than once"),
    ],
)
def test_invalid_weekly_hours_are_rejected(weekly_hours: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(timezone="UTC", weekly_hours=weekly_hours)


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", "../etc/passwd", "America"])
def test_unknown_timezone_is_rejected(timezone: str) -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        BusinessCalendar(timezone=timezone, weekly_hours=WEEKDAYS_9_TO_5)


def test_unknown_holiday_country_is_rejected() -> None:
    with pytest.raises(ValidationError, match="no public-holiday data"):
        nine_to_five(holiday_country="XX")


def test_weekly_hours_are_normalised_and_touching_or_unsorted_windows_are_accepted() -> None:
    calendar = BusinessCalendar(
        timezone="Europe/London",
        weekly_hours={
            "Sun": [["22:00", "24:00"]],
            "mon": [("12:00", "17:00"), ("00:00", "02:00"), ("09:00", "12:00")],
        },
    )

    assert calendar.weekly_hours == {
        "mon": [("00:00", "02:00"), ("09:00", "12:00"), ("12:00", "17:00")],
        "sun": [("22:00", "24:00")],
    }
    assert calendar.windows_on(date(2026, 1, 12)) == ((0, 120), (540, 1020))


def test_calendar_is_immutable() -> None:
    calendar = nine_to_five()

    with pytest.raises(ValidationError):
        calendar.timezone = "UTC"  # type: ignore[misc]


def test_copy_with_update_is_validated_and_uses_the_new_values() -> None:
    calendar = nine_to_five()

    berlin = calendar.model_copy(update={"timezone": "Europe/Berlin"})

    assert berlin.zone == ZoneInfo("Europe/Berlin")
    assert is_open(berlin, datetime(2026, 1, 12, 8, 30, tzinfo=UTC))  # 09:30 in Berlin
    with pytest.raises(ValidationError, match="overlap"):
        calendar.model_copy(
            update={"weekly_hours": {"mon": [("09:00", "12:00"), ("11:00", "13:00")]}}
        )


def test_equal_calendars_hash_alike() -> None:
    first = nine_to_five(holidays=[date(2026, 1, 12)])
    second = nine_to_five(holidays=[date(2026, 1, 12)])

    assert first == second
    assert len({first, second, nine_to_five()}) == 2
