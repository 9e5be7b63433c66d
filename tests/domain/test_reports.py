"""The pure part of the reports: what a status change counts for, and buckets cut in a time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pulse.domain.errors import ValidationFailed
from pulse.domain.reports import Marks, buckets, creation_marks, on_slot, report_range, transition_marks, zone_named


def test_a_status_change_counts_once_for_what_it_is() -> None:
    assert transition_marks("open", "resolved") == Marks(resolved=1, backlog_change=-1)
    assert transition_marks("resolved", "in_progress") == Marks(reopened=1, backlog_change=1)
    assert transition_marks("resolved", "closed") == Marks(closed=1)  # already out of the backlog
    assert transition_marks("waiting_customer", "closed") == Marks(closed=1, backlog_change=-1)
    assert transition_marks("open", "waiting_customer") == Marks()
    assert creation_marks("open") == Marks(created=1, backlog_change=1)
    assert creation_marks("closed") == Marks(created=1, closed=1)


def test_days_follow_the_zones_clock_across_a_dst_change() -> None:
    paris = zone_named("Europe/Paris")
    since, until = report_range("2026-03-28", "2026-03-30", paris, datetime(2026, 4, 1, tzinfo=UTC))
    days = buckets(since, until, "day", paris)
    assert [(b.period, b.start.isoformat(), b.end.isoformat()) for b in days] == [
        (date(2026, 3, 28), "2026-03-27T23:00:00+00:00", "2026-03-28T23:00:00+00:00"),
        (date(2026, 3, 29), "2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00"),  # 23 hours
        (date(2026, 3, 30), "2026-03-29T22:00:00+00:00", "2026-03-30T22:00:00+00:00"),
    ]


def test_weeks_start_on_monday_and_months_are_clipped_to_the_range() -> None:
    utc = zone_named(None)
    since, until = report_range("2026-03-04", "2026-04-15", utc, datetime(2026, 5, 1, tzinfo=UTC))
    weeks = buckets(since, until, "week", utc)
    assert weeks[0].period == date(2026, 3, 2) and weeks[0].start == datetime(2026, 3, 4, tzinfo=UTC)
    months = buckets(since, until, "month", utc)
    assert [(m.period, m.end) for m in months] == [(date(2026, 3, 1), datetime(2026, 4, 1, tzinfo=UTC)),
                                                   (date(2026, 4, 1), datetime(2026, 4, 16, tzinfo=UTC))]


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Australia/Eucla", "America/St_Johns",
                                  "Pacific/Chatham", "Australia/Lord_Howe"])
def test_local_midnights_of_odd_offset_zones_fall_on_the_rollups_slots(zone: str) -> None:
    tz = zone_named(zone)
    since, until = report_range("2026-01-01", "2026-12-31", tz, datetime(2027, 1, 1, tzinfo=UTC))
    assert all(on_slot(b.start) and on_slot(b.end) for b in buckets(since, until, "day", tz))


def test_too_many_buckets_or_an_unknown_zone_is_refused() -> None:
    utc = zone_named("UTC")
    since, until = report_range("2000-01-01", "2026-01-01", utc, datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationFailed):
        buckets(since, until, "day", utc)
    with pytest.raises(ValidationFailed):
        zone_named("posix/Europe/Paris")
