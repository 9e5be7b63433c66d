"""The pure SLA clock: due dates, at-risk/breach transitions, pauses, re-targets and reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulse.domain import sla
from pulse.domain.agenda import AgendaFacts, sla_items
from pulse.domain.calendar import BusinessCalendar, add_business_minutes, business_minutes_between
from pulse.domain.sla import SlaMetric, SlaPolicy, SlaState
from pulse.domain.tickets import Priority, TicketStatus

FR, RES = SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def next_due(ledger: sla.SlaLedger | None, now: datetime | None = None) -> tuple[datetime, str] | None:
    """The ticket agenda's next SLA item, as (instant, "<metric> at risk" | "<metric> breach")."""
    facts = AgendaFacts(status=TicketStatus.OPEN, created_at=T0, ledger=ledger)
    items = sorted(sla_items(facts), key=lambda item: item.at)
    if not items:
        return None
    metric, threshold = items[0].key.split("@")[0].split(":")
    label = metric.replace("_", " ") + (" at risk" if threshold == "at_risk" else " breach")
    return items[0].at, label
NINE_TO_FIVE = BusinessCalendar(
    timezone="Europe/Berlin",
    weekly_hours={day: [("09:00", "17:00")] for day in ("mon", "tue", "wed", "thu", "fri")},
)


def policy(first: int = 60, resolution: int = 480, **extra) -> SlaPolicy:
    return SlaPolicy(policy_id=1, first_response_minutes=first, resolution_minutes=resolution, **extra)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def types(events: list[sla.SlaEvent]) -> list[str]:
    return [event.type for event in events]


def test_a_new_ticket_gets_exact_due_dates_and_is_on_time() -> None:
    ledger, events = sla.start(policy(), TicketStatus.OPEN, T0)
    shown = sla.snapshot(ledger)
    assert shown.sla_status == SlaState.ON_TIME
    assert shown.sla_first_response_due == T0 + minutes(60)
    assert shown.sla_resolution_due == T0 + minutes(480)
    assert shown.sla_first_response_met is None and shown.sla_resolution_met is None
    assert types(events) == ["sla_started"]
    assert next_due(ledger, T0) == (T0 + minutes(48), "first response at risk")


def test_default_policies_follow_the_brief() -> None:
    assert [(p.first_response_minutes, p.resolution_minutes) for p in map(sla.default_policy, Priority)] == [
        (15, 240), (60, 480), (240, 1440), (480, 2880)]
    assert sla.default_policy(Priority.LOW).at_risk_percent == 80
    assert sla.default_policy(Priority.LOW).pause_statuses == (TicketStatus.WAITING_CUSTOMER,)


def test_the_clock_turns_at_risk_then_breached_at_the_exact_instants() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, events = sla.tick(ledger, T0 + minutes(47))
    assert events == [] and ledger.status == SlaState.ON_TIME

    ledger, events = sla.tick(ledger, T0 + minutes(48))
    assert ledger.status == SlaState.AT_RISK
    assert [(e.type, e.metric, e.occurred_at) for e in events] == [("sla_at_risk", FR, T0 + minutes(48))]
    assert next_due(ledger, T0 + minutes(48)) == (T0 + minutes(60), "first response breach")

    ledger, events = sla.tick(ledger, T0 + minutes(60))
    shown = sla.snapshot(ledger)
    assert [(e.type, e.metric) for e in events] == [("sla_breached", FR)]
    assert shown.sla_status == SlaState.BREACHED
    assert shown.sla_breached_at == T0 + minutes(60)
    assert shown.sla_first_response_met is False  # decided: it can no longer be met
    assert next_due(ledger, T0 + minutes(60)) == (T0 + minutes(384), "resolution at risk")


def test_a_late_evaluation_still_records_the_exact_crossing_instants() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, events = sla.tick(ledger, T0 + minutes(90))
    # It jumped straight to breached: only the breach is announced, at the instant it happened.
    assert [(e.type, e.occurred_at) for e in events] == [("sla_breached", T0 + minutes(60))]
    assert ledger.breached_at == T0 + minutes(60)


def test_first_response_in_time_is_met_and_the_status_follows_resolution() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, _ = sla.tick(ledger, T0 + minutes(50))
    assert ledger.status == SlaState.AT_RISK
    ledger, events = sla.first_response(ledger, T0 + minutes(55, ) + timedelta(seconds=20))
    shown = sla.snapshot(ledger)
    assert shown.sla_first_response_met is True
    assert shown.first_response_time == 55  # business minutes, rounded to the nearest minute
    assert shown.sla_status == SlaState.ON_TIME  # only resolution still runs, at 55 of 480 minutes
    assert types(events) == ["sla_metric_completed"]
    assert next_due(ledger, T0 + minutes(56)) == (T0 + minutes(384), "resolution at risk")


def test_a_response_after_the_due_instant_is_a_breach_even_before_the_timer_fired() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, events = sla.first_response(ledger, T0 + minutes(61))
    assert types(events) == ["sla_breached", "sla_metric_completed"]
    assert ledger.breached_at == T0 + minutes(60)
    assert sla.snapshot(ledger).sla_first_response_met is False
    assert sla.snapshot(ledger).first_response_time == 61


def test_waiting_on_the_customer_pauses_without_a_timer_and_resuming_shifts_due_dates() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, events = sla.change_status(ledger, TicketStatus.OPEN, TicketStatus.WAITING_CUSTOMER, T0 + minutes(10))
    assert types(events) == ["sla_paused"]
    assert ledger.status == SlaState.PAUSED
    assert next_due(ledger, T0 + minutes(10)) is None  # no timer at all while paused
    assert sla.snapshot(ledger).sla_paused_at == T0 + minutes(10)
    assert sla.snapshot(ledger).sla_first_response_due == T0 + minutes(60)  # fixed while paused

    ledger, events = sla.change_status(ledger, TicketStatus.WAITING_CUSTOMER, TicketStatus.IN_PROGRESS,
                                       T0 + minutes(100))
    shown = sla.snapshot(ledger)
    assert types(events) == ["sla_resumed"] and events[0].data == {"pausedMinutes": 90}
    assert shown.sla_first_response_due == T0 + minutes(150)
    assert shown.sla_resolution_due == T0 + minutes(570)
    assert shown.sla_total_paused_time == 90 and shown.sla_paused_at is None
    assert shown.sla_status == SlaState.ON_TIME


def test_pause_on_a_business_calendar_shifts_due_dates_by_the_paused_business_time() -> None:
    monday_16 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 16:00 in Berlin (CET)
    ledger, _ = sla.start(policy(first=240, resolution=1440, calendar=NINE_TO_FIVE), TicketStatus.OPEN, monday_16)
    before = sla.snapshot(ledger)
    # Monday 16:00 + 4 business hours = Tuesday 12:00 Berlin.
    assert before.sla_first_response_due == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)
    paused_at = monday_16 + minutes(30)  # 16:30
    resumed_at = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # Tuesday 10:00 Berlin
    ledger, _ = sla.pause(ledger, paused_at, "waiting for the vendor")
    ledger, _ = sla.resume(ledger, resumed_at)
    after = sla.snapshot(ledger)
    paused_business = business_minutes_between(NINE_TO_FIVE, paused_at, resumed_at)
    assert paused_business == 90  # 16:30-17:00 + 09:00-10:00
    assert after.sla_total_paused_time == 90
    for field in ("sla_first_response_due", "sla_resolution_due"):
        expected = add_business_minutes(NINE_TO_FIVE, getattr(before, field), paused_business)
        assert getattr(after, field) == expected


def test_a_manual_pause_outlives_a_status_change_and_a_status_pause_outlives_resume() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, _ = sla.change_status(ledger, TicketStatus.OPEN, TicketStatus.WAITING_CUSTOMER, T0 + minutes(5))
    ledger, events = sla.pause(ledger, T0 + minutes(6), "vendor")
    assert events == []  # already paused: nothing new happens
    ledger, events = sla.change_status(ledger, TicketStatus.WAITING_CUSTOMER, TicketStatus.IN_PROGRESS,
                                       T0 + minutes(7))
    assert ledger.status == SlaState.PAUSED and types(events) == []
    ledger, events = sla.resume(ledger, T0 + minutes(20))
    assert types(events) == ["sla_resumed"] and ledger.status == SlaState.ON_TIME
    assert sla.snapshot(ledger).sla_first_response_due == T0 + minutes(75)


def test_a_priority_upgrade_keeps_used_time_and_breaches_at_once_when_already_past() -> None:
    ledger, _ = sla.start(policy(first=240, resolution=1440), TicketStatus.OPEN, T0)
    now = T0 + minutes(30)
    ledger, events = sla.retarget(ledger, policy(first=15, resolution=240), TicketStatus.OPEN, now)
    shown = sla.snapshot(ledger)
    assert types(events) == ["sla_retargeted", "sla_breached"]
    assert events[1].occurred_at == now
    assert shown.sla_status == SlaState.BREACHED and shown.sla_breached_at == now
    assert shown.sla_first_response_due == now  # the target was used up by the change itself
    assert shown.sla_resolution_due == T0 + minutes(240)  # 30 used, 210 to go
    assert next_due(ledger, now) == (T0 + minutes(192), "resolution at risk")


def test_a_priority_downgrade_moves_running_due_dates_later() -> None:
    ledger, _ = sla.start(policy(first=15, resolution=240), TicketStatus.OPEN, T0)
    ledger, _ = sla.retarget(ledger, policy(first=60, resolution=480), TicketStatus.OPEN, T0 + minutes(10))
    assert sla.snapshot(ledger).sla_first_response_due == T0 + minutes(60)
    assert ledger.status == SlaState.ON_TIME


def test_reopen_resumes_the_resolution_clock_where_it_stopped() -> None:
    ledger, _ = sla.start(policy(first=60, resolution=480), TicketStatus.OPEN, T0)
    ledger, _ = sla.first_response(ledger, T0 + minutes(20))
    ledger, _ = sla.change_status(ledger, TicketStatus.OPEN, TicketStatus.RESOLVED, T0 + minutes(100))
    resolved = sla.snapshot(ledger)
    assert resolved.sla_resolution_met is True and resolved.resolution_time == 100
    assert resolved.sla_status == SlaState.ON_TIME
    assert next_due(ledger, T0 + minutes(100)) is None

    reopened_at = T0 + timedelta(days=2)
    ledger, events = sla.change_status(ledger, TicketStatus.RESOLVED, TicketStatus.IN_PROGRESS, reopened_at)
    shown = sla.snapshot(ledger)
    assert types(events) == ["sla_metric_resumed"]
    assert shown.sla_resolution_met is None and shown.resolution_time is None
    assert shown.sla_resolution_due == reopened_at + minutes(380)
    assert next_due(ledger, reopened_at) == (reopened_at + minutes(284), "resolution at risk")
    assert shown.sla_first_response_met is True  # a decided metric stays decided


def test_resolving_without_a_reply_stops_first_response_without_a_response_time() -> None:
    ledger, _ = sla.start(policy(), TicketStatus.OPEN, T0)
    ledger, _ = sla.change_status(ledger, TicketStatus.OPEN, TicketStatus.RESOLVED, T0 + minutes(30))
    shown = sla.snapshot(ledger)
    assert shown.sla_first_response_met is True and shown.first_response_time is None
    assert shown.sla_resolution_met is True and shown.resolution_time == 30


def test_when_no_metric_runs_the_status_shows_whether_any_was_missed() -> None:
    ledger, _ = sla.start(policy(first=60, resolution=480), TicketStatus.OPEN, T0)
    ledger, _ = sla.first_response(ledger, T0 + minutes(70))  # missed
    assert ledger.status == SlaState.ON_TIME  # only running metrics count: resolution is on time
    ledger, _ = sla.change_status(ledger, TicketStatus.OPEN, TicketStatus.RESOLVED, T0 + minutes(80))
    assert ledger.status == SlaState.BREACHED


def test_a_ticket_created_waiting_on_the_customer_starts_paused() -> None:
    ledger, events = sla.start(policy(), TicketStatus.WAITING_CUSTOMER, T0)
    assert ledger.status == SlaState.PAUSED and types(events) == ["sla_started", "sla_paused"]
    assert next_due(ledger, T0) is None


def test_an_edited_calendar_keeps_used_time_measured_with_the_old_one() -> None:
    monday_9 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    ledger, _ = sla.start(policy(first=600, resolution=6000, calendar=NINE_TO_FIVE), TicketStatus.OPEN, monday_9)
    evening = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 21:00 Berlin: 8 business hours used
    ledger, _ = sla.retarget(ledger, policy(first=600, resolution=6000), TicketStatus.OPEN, evening)
    assert ledger.first_response.used == minutes(480)
    assert sla.snapshot(ledger).sla_first_response_due == evening + minutes(120)


def test_escalation_can_ask_for_the_instant_of_any_percentage() -> None:
    ledger, _ = sla.start(policy(first=100, resolution=1000), TicketStatus.OPEN, T0)
    assert sla.instant_at(ledger, FR, ledger.policy.target(FR) * 85 / 100) == T0 + minutes(85)
    assert sla.instant_at(ledger, RES, ledger.policy.target(RES) * 70 / 100) == T0 + minutes(700)
    ledger, _ = sla.pause(ledger, T0, "x")
    assert sla.instant_at(ledger, FR, ledger.policy.target(FR) * 85 / 100) is None  # nothing is due while paused


def test_the_ledger_survives_a_round_trip_through_json() -> None:
    ledger, _ = sla.start(policy(calendar=NINE_TO_FIVE.model_copy(update={"holiday_country": "DE"})),
                          TicketStatus.OPEN, T0)
    ledger, _ = sla.pause(ledger, T0 + minutes(5), "why not")
    again = sla.SlaLedger.model_validate_json(ledger.model_dump_json())
    assert again == ledger
    assert again.policy.calendar is not None and again.policy.calendar.is_holiday(datetime(2026, 12, 25).date())


def test_a_policy_cannot_pause_in_statuses_where_the_clock_stops_anyway() -> None:
    with pytest.raises(ValueError, match="resolved cannot pause"):
        policy(pause_statuses=(TicketStatus.RESOLVED,))


def test_a_matching_conditional_policy_wins_over_the_priority_policy_first_by_order() -> None:
    by_priority = sla.PolicyCandidate(policy=policy(60, 480), priority=Priority.HIGH)
    vip = sla.PolicyCandidate(policy=SlaPolicy(policy_id=7, first_response_minutes=10, resolution_minutes=60),
                              conditions=sla.PolicyConditions(tags=["VIP"]), order=2)
    vip_bugs = sla.PolicyCandidate(policy=SlaPolicy(policy_id=8, first_response_minutes=5, resolution_minutes=30),
                                   conditions=sla.PolicyConditions(tags=["vip"], type_ids=[3]), order=1)
    disabled = sla.PolicyCandidate(policy=SlaPolicy(policy_id=9, first_response_minutes=1, resolution_minutes=2),
                                   conditions=sla.PolicyConditions(priorities=[Priority.HIGH]), enabled=False)
    candidates = [by_priority, vip, vip_bugs, disabled]
    facts = sla.TicketFacts(priority=Priority.HIGH, tags=["vip"], type_id=3)
    assert sla.choose_policy(candidates, facts).policy_id == 8
    assert sla.choose_policy(candidates, facts.model_copy(update={"type_id": 4})).policy_id == 7
    assert sla.choose_policy(candidates, facts.model_copy(update={"tags": []})).policy_id == 1
    # No stored policy for the priority: the brief's default.
    assert sla.choose_policy(candidates, sla.TicketFacts(priority=Priority.LOW)).first_response_minutes == 480


def test_following_a_change_starts_retargets_pauses_and_stops_in_one_call() -> None:
    ledger, events = sla.follow(None, policy=policy(), status_before=TicketStatus.OPEN, status=TicketStatus.OPEN,
                                first_responded_at=None, created_at=T0, now=T0)
    assert types(events) == ["sla_started"] and ledger.first_response.due_at == T0 + minutes(60)
    ledger, events = sla.follow(ledger, policy=policy(first=15), status_before=TicketStatus.OPEN,
                                status=TicketStatus.WAITING_CUSTOMER, first_responded_at=T0 + minutes(5),
                                created_at=T0, now=T0 + minutes(5))
    assert types(events) == ["sla_retargeted", "sla_paused", "sla_metric_completed"]
    assert ledger.first_response.met is True and ledger.status == SlaState.PAUSED
    same, nothing = sla.follow(ledger, policy=None, status_before=TicketStatus.WAITING_CUSTOMER,
                               status=TicketStatus.WAITING_CUSTOMER, first_responded_at=T0 + minutes(5),
                               created_at=T0, now=T0 + minutes(9))
    assert nothing == [] and same == ledger
