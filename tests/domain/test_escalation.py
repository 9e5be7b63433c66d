"""Escalation thresholds, pure: which rules apply to a ticket and when each falls due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pulse.domain import escalation, records, sla
from pulse.domain.calendar import BusinessCalendar
from pulse.domain.escalation import EscalateTo, EscalationRule, EscalationWhen
from pulse.domain.sla import SlaMetric, SlaPolicy
from pulse.domain.tickets import Priority, TicketStatus

FRIDAY_4PM = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # 16:00 in Berlin
NINE_TO_FIVE = BusinessCalendar(
    timezone="Europe/Berlin",
    weekly_hours={day: [("09:00", "17:00")] for day in ("mon", "tue", "wed", "thu", "fri")},
)


def ticket(priority: Priority = Priority.URGENT, created_at: datetime = FRIDAY_4PM, **fields: object) -> records.Ticket:
    return records.Ticket(**{"id": 1, "account_id": 1, "number": 1, "subject": "Card terminal down",
                             "status": TicketStatus.OPEN, "priority": priority, "version": 1,
                             "created_at": created_at, "updated_at": created_at, **fields})


def rule(when: dict[str, object], **fields: object) -> EscalationRule:
    return EscalationRule(id=7, name="level 1", when=EscalationWhen.model_validate(when),
                          escalate_to=EscalateTo.SPECIFIC_USER, escalate_to_user_id=3, **fields)


def ledger(created_at: datetime = FRIDAY_4PM, calendar: BusinessCalendar | None = None) -> sla.SlaLedger:
    started, _ = sla.start(SlaPolicy(policy_id=1, first_response_minutes=60, resolution_minutes=240,
                                     calendar=calendar), TicketStatus.OPEN, created_at)
    return started


def test_an_age_threshold_counts_wall_clock_minutes_from_creation() -> None:
    assert escalation.threshold(rule({"afterMinutes": 90}), ticket(), None) == FRIDAY_4PM + timedelta(minutes=90)
    assert escalation.threshold(rule({"escalateAfterMinutes": 90}), ticket(), None) == FRIDAY_4PM + timedelta(minutes=90)


def test_business_hours_only_measures_the_age_in_the_sla_calendar() -> None:
    """Friday 16:00 Berlin + 90 business minutes = 60 on Friday, 30 on Monday: Monday 09:30."""
    monday_930 = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
    business = rule({"afterMinutes": 90}, business_hours_only=True)
    assert escalation.threshold(business, ticket(), ledger(calendar=NINE_TO_FIVE)) == monday_930
    # without a calendar there are no business hours to keep: wall clock
    assert escalation.threshold(business, ticket(), ledger()) == FRIDAY_4PM + timedelta(minutes=90)


def test_no_first_response_stops_once_an_agent_replied() -> None:
    waiting = rule({"noFirstResponseMinutes": 15})
    assert escalation.threshold(waiting, ticket(), None) == FRIDAY_4PM + timedelta(minutes=15)
    answered = ticket(first_responded_at=FRIDAY_4PM + timedelta(minutes=5))
    assert escalation.threshold(waiting, answered, None) is None


def test_an_sla_percentage_falls_due_at_that_share_of_the_metric_in_business_time() -> None:
    eighty = rule({"slaPercent": 80, "metric": "resolution"})
    assert escalation.threshold(eighty, ticket(), ledger()) == FRIDAY_4PM + timedelta(minutes=192)
    # 192 business minutes from Friday 16:00 Berlin: 60 on Friday, 132 on Monday from 09:00 → 11:12
    assert escalation.threshold(eighty, ticket(), ledger(calendar=NINE_TO_FIVE)) == datetime(
        2026, 3, 9, 10, 12, tzinfo=UTC)
    assert escalation.threshold(eighty, ticket(), None) is None  # no SLA, no percentage


def test_a_paused_clock_holds_no_percentage_threshold() -> None:
    paused, _ = sla.pause(ledger(), FRIDAY_4PM + timedelta(minutes=10), "waiting on the customer")
    assert escalation.threshold(rule({"slaPercent": 50, "metric": "first_response"}), ticket(), paused) is None


def test_a_rule_applies_to_its_priority_or_to_all_and_only_while_enabled() -> None:
    urgent_only = rule({"afterMinutes": 5}, priority=Priority.URGENT)
    every = rule({"afterMinutes": 5}, priority="all")
    off = rule({"afterMinutes": 5}, enabled=False)
    assert [r for r, _ in escalation.items(ticket(Priority.URGENT), None, [urgent_only, every, off])] == [
        urgent_only, every]
    assert [r for r, _ in escalation.items(ticket(Priority.LOW), None, [urgent_only, every, off])] == [every]


def test_resolved_and_closed_tickets_have_no_escalation_items() -> None:
    rules = [rule({"afterMinutes": 5})]
    for status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        assert escalation.items(ticket(status=status), None, rules) == []
    assert escalation.items(None, None, rules) == []


def test_a_reopened_ticket_counts_its_age_from_the_reopen() -> None:
    reopened_at = FRIDAY_4PM + timedelta(days=2)
    again = ticket(last_reopened_at=reopened_at, reopen_count=1)
    assert escalation.threshold(rule({"afterMinutes": 30}), again, None) == reopened_at + timedelta(minutes=30)


def test_levels_escalate_upwards_and_count_every_escalation() -> None:
    target = escalation.ResolvedTarget(user_ids=[3], description="user 3")
    once, _ = escalation.escalate(ticket(), rule({"afterMinutes": 5}, level=2), target, FRIDAY_4PM, FRIDAY_4PM)
    twice, events = escalation.escalate(once, rule({"afterMinutes": 1}, level=1), target, FRIDAY_4PM, FRIDAY_4PM)
    assert (twice.escalation_count, twice.escalation_level) == (2, 2)
    assert events[0].type == "escalated" and events[0].actor.kind == "escalation:7"
