"""Automation rules, pure: parsing with exact error paths, and evaluation (order, cascade, once per
originating change, the loop guard, rollback of a failed rule, time_in_status items)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.domain import changes, pipeline
from pulse.domain.agenda import AgendaFacts, TicketRules, automation_items
from pulse.domain.automation import MAX_DEPTH, AutomationRule, parse_rule
from pulse.domain.automation_eval import Context, evaluate
from pulse.domain.changes import Actor, NewTicket, TicketChanges
from pulse.domain.errors import ValidationFailed
from pulse.domain.rotation import RotationSlot
from pulse.domain.tickets import Priority, TicketStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
USER = Actor(kind="user", user_id=7)


def rule(rule_id: int, trigger: str, actions: list[dict[str, Any]], conditions: list[dict[str, Any]] | None = None,
         order: int = 0, match: str = "all", config: dict[str, Any] | None = None) -> AutomationRule:
    return parse_rule(trigger, config, conditions or [], match, actions, order, rule_id=rule_id, name=f"r{rule_id}")


def new_ticket(**fields: Any):
    return changes.create(1, 1, 1, NewTicket(subject="Payment processing error", **fields), USER, NOW)


def patched(ticket, **fields: Any):
    return changes.update(ticket, TicketChanges(**fields), USER, NOW + timedelta(minutes=1))


def details(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d["field"] for d in error.value.details]


# -- parsing --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("parts", "path"), [
    ({"trigger": "ticket_exploded"}, "trigger"),
    ({"conditions": [{"field": "priority", "operator": "equals", "value": "urgent"},
                     {"field": "priority", "operator": "resembles", "value": "x"}]}, "conditions[1].operator"),
    ({"conditions": [{"field": "colour", "operator": "equals", "value": "red"}]}, "conditions[0].field"),
    ({"conditions": [{"field": "priority", "operator": "equals", "value": "critical"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "responseCount", "operator": "greater_than", "value": "two"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "comment.isInternal", "operator": "equals", "value": "yes"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "priority", "operator": "contains", "value": "u"}]}, "conditions[0].operator"),
    ({"conditions": [{"field": "status", "operator": "in", "value": "open"}]}, "conditions[0].value"),
    ({"trigger": "ticket_created",
      "conditions": [{"field": "status", "operator": "changed"}]}, "conditions[0].operator"),
    ({"actions": [{"type": "change_status", "status": "open"}, {"type": "explode"}]}, "actions[1].type"),
    ({"actions": [{"type": "change_status"}]}, "actions[0].status"),
    ({"actions": [{"type": "assign_to_team", "teamId": "five"}]}, "actions[0].teamId"),
    ({"actions": [{"type": "send_notification", "channels": ["pigeon"], "to": "team"}]}, "actions[0].channels[0]"),
    ({"actions": []}, "actions"),
    ({"trigger": "time_in_status", "config": {"status": "resolved"}}, "triggerConfig.afterMinutes"),
    ({"trigger": "time_in_status", "config": {"status": "closed", "afterMinutes": 5}}, "triggerConfig.status"),
    ({"trigger": "ticket_created", "config": {"status": "open", "afterMinutes": 5}}, "triggerConfig"),
    ({"conditions": [{"field": "comment.body", "operator": "contains", "value": "x"}]}, "conditions[0].field"),
])
def test_an_invalid_rule_names_the_exact_part(parts: dict[str, Any], path: str) -> None:
    arguments = {"trigger": "ticket_updated", "config": None, "conditions": [],
                 "actions": [{"type": "add_tags", "tags": ["x"]}], **parts}
    with pytest.raises(ValidationFailed) as error:
        parse_rule(arguments["trigger"], arguments["config"], arguments["conditions"], "all", arguments["actions"])
    assert details(error) == [path]


def test_every_operator_and_field_kind_the_spec_lists_parses() -> None:
    parsed = rule(1, "comment_added", [{"type": "add_tags", "tags": ["x"]}], [
        {"field": "customFields.plan", "operator": "equals", "value": "gold"},
        {"field": "comment.body", "operator": "contains", "value": "refund"},
        {"field": "comment.authorType", "operator": "in", "value": ["customer"]},
        {"field": "tags", "operator": "not_contains", "value": "vip"},
        {"field": "responseCount", "operator": "less_than_or_equal", "value": 3},
        {"field": "createdAt", "operator": "greater_than", "value": "2026-01-01T00:00:00Z"},
    ])
    assert [c.operator.value for c in parsed.conditions][-1] == "greater_than"
    updated = rule(2, "ticket_updated", [{"type": "add_tags", "tags": ["x"]}], [
        {"field": "status", "operator": "changed"}, {"field": "priority", "operator": "changed_to", "value": "high"},
        {"field": "assignedToTeamId", "operator": "changed_from", "value": None}])
    assert len(updated.conditions) == 3


# -- evaluation -----------------------------------------------------------------------------------

def test_an_urgent_ticket_is_assigned_to_a_team_on_creation() -> None:
    ticket, events = new_ticket(priority=Priority.URGENT)
    rules = [rule(1, "ticket_created", [{"type": "assign_to_team", "teamId": 5}],
                  [{"field": "priority", "operator": "equals", "value": "urgent"}])]
    result = evaluate(None, ticket, events, rules, NOW)
    assert result.ticket.assigned_to_team_id == 5
    assert result.ticket.version == 1  # the create and its rules are one version
    assert [e.status for e in result.executions] == ["success"]
    assert result.executions[0].before == {"assignedToTeamId": None}
    assert result.executions[0].after == {"assignedToTeamId": 5}
    assert any(e.actor.kind == "automation:1" and e.field == "assigned_to_team_id" for e in result.events)


def test_a_low_ticket_is_skipped_and_the_skip_is_logged() -> None:
    ticket, events = new_ticket(priority=Priority.LOW)
    rules = [rule(1, "ticket_created", [{"type": "assign_to_team", "teamId": 5}],
                  [{"field": "priority", "operator": "equals", "value": "urgent"}])]
    result = evaluate(None, ticket, events, rules, NOW)
    assert result.ticket == ticket
    [execution] = result.executions
    assert execution.status == "skipped" and execution.condition_results[0].actual_value == "low"


def test_rules_run_by_execution_order_then_id_each_seeing_the_ones_before() -> None:
    ticket, events = new_ticket()
    rules = [
        rule(3, "ticket_created", [{"type": "add_tags", "tags": ["third"]}],
             [{"field": "tags", "operator": "contains", "value": "second"}], order=5),
        rule(2, "ticket_created", [{"type": "add_tags", "tags": ["second"]}],
             [{"field": "tags", "operator": "contains", "value": "first"}], order=5),
        rule(9, "ticket_created", [{"type": "add_tags", "tags": ["first"]}], order=1),
    ]
    result = evaluate(None, ticket, events, rules, NOW)
    assert [e.rule_id for e in result.executions] == [9, 2, 3]
    assert result.ticket.tags == ["first", "second", "third"]


def test_a_rule_change_raises_its_own_event_which_fires_other_rules() -> None:
    ticket, _ = new_ticket()
    after, events = patched(ticket, priority=Priority.HIGH)
    rules = [
        rule(1, "priority_changed", [{"type": "change_status", "status": "in_progress"}]),
        rule(2, "status_changed", [{"type": "add_tags", "tags": ["moving"]}],
             [{"field": "status", "operator": "changed_to", "value": "in_progress"}]),
    ]
    result = evaluate(ticket, after, events, rules, NOW)
    assert result.ticket.status == TicketStatus.IN_PROGRESS and result.ticket.tags == ["moving"]
    assert [(e.rule_id, e.depth) for e in result.executions] == [(1, 1), (2, 2)]
    assert result.executions[1].caused_by == {"kind": "execution", "ruleId": 1, "depth": 1, "event": "status_changed"}
    assert result.ticket.version == after.version  # still one version for the PATCH


def test_two_rules_flipping_a_status_back_and_forth_terminate() -> None:
    ticket, _ = new_ticket()
    after, events = patched(ticket, status=TicketStatus.IN_PROGRESS)
    rules = [
        rule(1, "status_changed", [{"type": "change_status", "status": "waiting_customer"}],
             [{"field": "status", "operator": "equals", "value": "in_progress"}]),
        rule(2, "status_changed", [{"type": "change_status", "status": "in_progress"}],
             [{"field": "status", "operator": "equals", "value": "waiting_customer"}]),
    ]
    result = evaluate(ticket, after, events, rules, NOW)
    assert [e.status for e in result.executions if e.status != "skipped"] == ["success", "success"]
    assert result.ticket.status == TicketStatus.IN_PROGRESS


def test_a_cascade_deeper_than_ten_stops_with_loop_stopped() -> None:
    ticket, _ = new_ticket()
    after, events = patched(ticket, tags=["t0"])
    # Ordered last-link first, so each link fires one step after the one before it.
    chain = [rule(i + 1, "ticket_updated", [{"type": "add_tags", "tags": [f"t{i + 1}"]}],
                  [{"field": "tags", "operator": "contains", "value": f"t{i}"}], order=-i) for i in range(MAX_DEPTH + 3)]
    result = evaluate(ticket, after, events, chain, NOW)
    succeeded = [e for e in result.executions if e.status == "success"]
    assert len(succeeded) == MAX_DEPTH
    stopped = [e for e in result.executions if e.status == "loop_stopped"]
    assert stopped and stopped[0].depth == MAX_DEPTH + 1
    assert f"t{MAX_DEPTH + 1}" not in result.ticket.tags


def test_a_failed_action_rolls_back_that_rule_only_and_the_next_rules_run() -> None:
    ticket, _ = new_ticket()
    after, events = patched(ticket, status=TicketStatus.RESOLVED)
    rules = [
        rule(1, "status_changed", [{"type": "add_tags", "tags": ["half"]}, {"type": "change_status", "status": "open"}]),
        rule(2, "status_changed", [{"type": "add_tags", "tags": ["done"]}]),
    ]
    result = evaluate(ticket, after, events, rules, NOW)
    assert [e.status for e in result.executions] == ["failed", "success"]
    assert "resolved" in (result.executions[0].error_message or "")
    assert result.ticket.tags == ["done"]


def test_an_escalation_triggers_escalated_rules() -> None:
    ticket, _ = new_ticket(priority=Priority.HIGH)
    escalated = changes.TicketEvent(type="escalated", occurred_at=NOW, actor=Actor(kind="escalation:3"))
    rules = [rule(1, "escalated", [{"type": "change_priority", "priority": "increase"}]),
             rule(2, "ticket_updated", [{"type": "add_tags", "tags": ["raised"]}])]
    result = evaluate(ticket, ticket, [escalated], rules, NOW)
    assert result.ticket.priority == Priority.URGENT and result.ticket.tags == ["raised"]
    assert [e.rule_id for e in result.executions] == [1, 2]  # the priority change raised ticket_updated
    assert result.executions[1].status == "success"  # … whose rule then ran (no condition)


def test_comment_fields_are_seen_on_comment_added() -> None:
    ticket, _ = new_ticket()
    note = changes.NewComment(id=4, body="I want a REFUND now", author_type="customer")
    after, events = changes.comment(ticket, note, USER, NOW)
    rules = [rule(1, "comment_added", [{"type": "add_tags", "tags": ["refund"]}],
                  [{"field": "comment.body", "operator": "contains", "value": "refund"},
                   {"field": "comment.authorType", "operator": "equals", "value": "customer"}])]
    result = evaluate(ticket, after, events, rules, NOW, Context(comment=note))
    assert result.ticket.tags == ["refund"]


def test_a_rotation_assignment_asks_for_the_rotation_then_picks_from_it() -> None:
    ticket, events = new_ticket()
    rules = [rule(1, "ticket_created", [{"type": "assign_to_rotation", "rotationId": 3}])]
    first = evaluate(None, ticket, events, rules, NOW)
    assert first.rotations_needed == [3]
    slots = [RotationSlot(user_id=11, weight=1), RotationSlot(user_id=12, weight=2)]
    second = evaluate(None, ticket, events, rules, NOW, Context(rotations={3: slots}))
    assert second.rotations_needed == [] and second.ticket.assigned_to_user_id == 12
    assert [s.current for s in second.rotations[3]] == [1, -1]


def test_a_time_in_status_item_is_re_armed_when_the_ticket_re_enters_the_status() -> None:
    auto_close = rule(4, "time_in_status", [{"type": "change_status", "status": "closed"}],
                      config={"status": "resolved", "afterMinutes": 10080})
    ticket, _ = new_ticket()
    resolved, _ = patched(ticket, status=TicketStatus.RESOLVED)
    rules = TicketRules(automations=[auto_close])
    [item] = automation_items(AgendaFacts(status=resolved.status, created_at=NOW, rules=rules, ticket=resolved))
    assert item.at == resolved.status_changed_at + timedelta(days=7)
    reopened, _ = changes.update(resolved, TicketChanges(status=TicketStatus.IN_PROGRESS), USER, NOW + timedelta(days=1))
    assert automation_items(AgendaFacts(status=reopened.status, created_at=NOW, rules=rules, ticket=reopened)) == []
    assert pipeline.time_in_status_events(reopened, item) == []  # it left the status: nothing fires
    again, _ = changes.update(reopened, TicketChanges(status=TicketStatus.RESOLVED), USER, NOW + timedelta(days=2))
    [rearmed] = automation_items(AgendaFacts(status=again.status, created_at=NOW, rules=rules, ticket=again))
    assert rearmed.key != item.key and rearmed.at == NOW + timedelta(days=9)
    [event] = pipeline.time_in_status_events(again, rearmed)
    result = evaluate(again, again, [event], [auto_close], rearmed.at)
    assert result.ticket.status == TicketStatus.CLOSED


tag_names = st.sampled_from(["a", "b", "c", "d"])
rule_strategy = st.builds(
    lambda rule_id, order, wanted, added, status: rule(
        rule_id, "ticket_updated",
        [{"type": "add_tags", "tags": [added]}] + ([{"type": "change_status", "status": status}] if status else []),
        [{"field": "tags", "operator": "contains", "value": wanted}], order=order),
    st.integers(1, 10_000), st.integers(-3, 3), tag_names, tag_names,
    st.sampled_from([None, "open", "in_progress", "waiting_customer", "resolved"]))


@settings(max_examples=150, deadline=None)
@given(rules=st.lists(rule_strategy, max_size=15, unique_by=lambda r: r.id), first=tag_names)
def test_any_rule_set_terminates_each_rule_firing_at_most_once(rules: list[AutomationRule], first: str) -> None:
    ticket, _ = new_ticket()
    after, events = patched(ticket, tags=[first])
    result = evaluate(ticket, after, events, rules, NOW)
    fired = [e.rule_id for e in result.executions if e.status in ("success", "failed", "loop_stopped")]
    assert len(fired) == len(set(fired))
    assert all(e.depth <= MAX_DEPTH + 1 for e in result.executions)
    assert evaluate(ticket, after, events, rules, NOW) == result  # deterministic: a dry run equals the run


def test_a_value_the_ticket_refuses_fails_the_rule_not_the_write() -> None:
    ticket, events = new_ticket()
    too_long = AutomationRule(id=1, trigger="ticket_created", actions=[
        {"type": "change_priority", "priority": "high"}])
    # A rule stored before a limit tightened: built without parse_rule's checks.
    bad = too_long.model_copy(update={"actions": [*too_long.actions,
                                                  too_long.actions[0].model_copy(update={"priority": "critical"})]})
    result = evaluate(None, ticket, events, [bad], NOW)
    assert [e.status for e in result.executions] == ["failed"] and result.ticket == ticket
