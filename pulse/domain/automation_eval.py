"""Evaluating automation rules, pure: ``evaluate(before, ticket, events, rules, now) → Evaluation``.

The events a change raised are the *originating* step. Each step runs the enabled rules whose
trigger it raised, one after another by ``executionOrder`` then id, each seeing the ticket as the
rules before it left it. What a rule changes raises its own events (``change_status`` raises
``status_changed`` …); the events of a step's rules make the next step (depth + 1). A rule fires
at most once per originating change (a rule whose conditions did not hold may still fire later in
the cascade); a rule whose conditions hold deeper than :data:`~pulse.domain.automation.MAX_DEPTH`
does nothing and is logged ``loop_stopped``, so the cascade ends there. An action that fails (an invalid transition, a
closed ticket, custom fields too large) rolls back that rule's changes only; the rule is logged
``failed`` and the next rules still run.

Every evaluation is an :class:`Execution` (``skipped`` included). Nothing here does I/O: the
engine stores the outcome in the write's transaction, the dry run renders it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from operator import attrgetter
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from pulse.domain import changes, records
from pulse.domain.automation import (
    MAX_DEPTH,
    AddInternalNote,
    AddTags,
    AssignToRotation,
    AssignToTeam,
    AssignToUser,
    AutomationRule,
    ChangePriority,
    ChangeStatus,
    PauseSla,
    RemoveTags,
    ResumeSla,
    SendNotification,
    SetCustomField,
    Trigger,
)
from pulse.domain.changes import REFERENCE_FIELDS, Actor, TagEdit, TicketChanges, TicketEvent
from pulse.domain.conditions import actual_value, matches
from pulse.domain.errors import DomainError, ValidationFailed
from pulse.domain.notify import notify_payload
from pulse.domain.rotation import RotationSlot, pick_next
from pulse.domain.ticket_fields import FIELDS
from pulse.domain.tickets import PRIORITY_SEVERITY, AuthorType, Priority

EXECUTED_EVENT = "automation_executed"
NOTIFICATION_EVENT = "automation_notification"
Status = Literal["success", "failed", "skipped", "loop_stopped"]


@dataclasses.dataclass(slots=True)
class ConditionResult:
    field: str
    operator: str
    value: Any
    actual_value: Any
    matched: bool


# Plain dataclasses, not pydantic models: a write with 50 rules makes 100 of them, and validating
# them was a measurable part of a PATCH (bench/automation.py).
@dataclasses.dataclass(slots=True)
class Execution:
    """One evaluation of one rule (the audit trail's row)."""

    rule_id: int
    trigger: str
    status: Status
    conditions_matched: bool
    caused_by: dict[str, Any]
    depth: int
    executed_at: datetime
    rule_name: str = ""
    condition_results: list[ConditionResult] = dataclasses.field(default_factory=list)
    actions_performed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    before: dict[str, Any] = dataclasses.field(default_factory=dict)
    after: dict[str, Any] = dataclasses.field(default_factory=dict)
    error_message: str | None = None
    execution_time_ms: float = 0.0


class Context(BaseModel):
    """What the shell supplies: the comment that caused the evaluation (for ``comment.*``), the
    state of the rotations rules may pick from (``assign_to_rotation``; a rotation not given is
    asked for in :attr:`Evaluation.rotations_needed`), and, for a dry run, the rule to test."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    comment: Any = None
    rotations: dict[int, list[RotationSlot]] = {}
    # (column, id) of users and teams the account no longer has (deleted after a rule named them):
    # an action assigning one fails (the shell finds them after a first evaluation).
    missing_references: frozenset[tuple[str, int]] = frozenset()
    only_rule: int | None = None  # the originating step runs this rule only (a dry run, a time_in_status item)


class Evaluation(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    ticket: records.Ticket
    events: list[TicketEvent] = []  # raised by the rules (their changes and their executions)
    executions: list[Execution] = []
    rotations: dict[int, list[RotationSlot]] = {}  # the rotations' state after the rules' picks
    rotations_needed: list[int] = []  # picked from without their state: evaluate again with it
    clock_pause: bool | None = None  # pause_sla (True) / resume_sla (False)
    pause_reason: str | None = None

    @property
    def changed(self) -> bool:
        return any(e.status == "success" and e.after != e.before for e in self.executions)


def triggers_of(event: TicketEvent) -> dict[Trigger, int | None]:
    """The triggers an event raises (for ``time_in_status``: of one rule only)."""
    kind = event.type
    if kind == "ticket_created":
        return {Trigger.TICKET_CREATED: None}
    if kind == "status_changed":
        return {Trigger.STATUS_CHANGED: None, Trigger.TICKET_UPDATED: None}
    if kind == "field_changed":
        raised: dict[Trigger, int | None] = {Trigger.TICKET_UPDATED: None}
        if event.field == "priority":
            raised[Trigger.PRIORITY_CHANGED] = None
        if event.field in ("assigned_to_user_id", "assigned_to_team_id") and event.to_value is not None:
            raised[Trigger.ASSIGNED] = None
        return raised
    if kind in ("comment_added", "escalated", "sla_at_risk", "sla_breached"):
        return {Trigger(kind): None}
    if kind == "time_in_status":
        return {Trigger.TIME_IN_STATUS: int(event.data["ruleId"])}
    return {}


@dataclasses.dataclass
class _Step:
    """Rules to run: per trigger raised, what raised it (``caused_by``) and which rule it is for."""

    causes: list[tuple[Trigger, int | None, dict[str, Any]]]
    before: records.Ticket | None
    comment: Any
    depth: int

    def cause_for(self, rule: AutomationRule) -> dict[str, Any] | None:
        for trigger, only, cause in self.causes:
            if trigger == rule.trigger and (only is None or only == rule.id):
                return cause
        return None


def _comment_of(events: list[TicketEvent], given: Any) -> Any:
    for event in events:
        if event.type == "comment_added":
            if "note" in event.data:
                return _Note(body=event.data["note"])
            return given
    return None


@dataclasses.dataclass(frozen=True)
class _Note:
    """An internal note a rule adds, as conditions on ``comment.*`` see it."""

    body: str
    is_internal: bool = True
    author_type: str = AuthorType.SYSTEM.value


def _causes(events: list[TicketEvent], cause: dict[str, Any]) -> list[tuple[Trigger, int | None, dict[str, Any]]]:
    found = []
    for event in events:
        for trigger, only in triggers_of(event).items():
            found.append((trigger, only, {**cause, "event": event.type}))
    return found


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "value", value)


def _values(ticket: records.Ticket, names: list[str]) -> dict[str, Any]:
    return {FIELDS[name].api if name in FIELDS else name: _json(getattr(ticket, name)) for name in names}


_BOOKKEEPING = {"version", "updated_at", "write_sequence"}


def _difference(before: records.Ticket, after: records.Ticket) -> tuple[dict[str, Any], dict[str, Any]]:
    names = [name for name in changes.changed_columns(before, after) if name not in _BOOKKEEPING]
    return _values(before, names), _values(after, names)


def _stepped_priority(current: Priority, wanted: str) -> Priority:
    if wanted not in ("increase", "decrease"):
        return Priority(wanted)
    ranked = sorted(Priority, key=PRIORITY_SEVERITY.__getitem__)
    index = ranked.index(current) + (1 if wanted == "increase" else -1)
    return ranked[max(0, min(index, len(ranked) - 1))]


@dataclasses.dataclass
class _Outcome:
    ticket: records.Ticket
    events: list[TicketEvent]
    performed: list[dict[str, Any]]
    rotations: dict[int, list[RotationSlot]]
    clock_pause: bool | None = None
    pause_reason: str | None = None


def _notification(ticket: records.Ticket, rule: AutomationRule, action: SendNotification, actor: Actor,
                  now: datetime) -> TicketEvent:
    subject = action.subject or f"[{ticket.ticket_number}] {ticket.subject}"
    text = action.message or f"Automation rule {rule.name or rule.id} on {ticket.ticket_number}: {ticket.subject}"
    user_ids: list[int] = []
    team_id = emails = None
    data: dict[str, Any] = {"ruleId": rule.id, "to": action.to}
    if action.to == "user":
        user = action.user_id or ticket.assigned_to_user_id
        user_ids = [user] if user else []
    elif action.to == "team":
        team_id = action.team_id or ticket.assigned_to_team_id
    elif action.to == "requester":
        emails = [ticket.requester_email] if ticket.requester_email else []
    else:  # manager: resolved by the engine when it stores the event (the team's manager, else admins)
        data["managerOfTeamId"] = ticket.assigned_to_team_id
    data["notify"] = notify_payload(kind="automation", reason=f"automation:{rule.id}", channels=list(action.channels),
                                    subject=subject, text=text, user_ids=user_ids, team_id=team_id, emails=emails)
    return TicketEvent(type=NOTIFICATION_EVENT, occurred_at=now, actor=actor, data=data)


def _perform(rule: AutomationRule, ticket: records.Ticket, now: datetime, rotations: dict[int, list[RotationSlot]],
             needed: set[int], missing: frozenset[tuple[str, int]] = frozenset()) -> _Outcome:
    """The rule's actions in order on a copy; raises DomainError when one fails (nothing kept)."""
    actor = Actor(kind=f"automation:{rule.id}")
    outcome = _Outcome(ticket=ticket, events=[], performed=[], rotations=dict(rotations))

    def update(fields: dict[str, Any] | None = None, tags: TagEdit | None = None) -> None:
        for column, value in (fields or {}).items():
            if column in REFERENCE_FIELDS and (column, value) in missing:
                raise ValidationFailed(f"no {REFERENCE_FIELDS[column]} with id {value} in this account any more")
        change = TicketChanges.model_validate(fields or {})
        outcome.ticket, raised = changes.update(outcome.ticket, change, actor, now, tags=tags)
        outcome.events += raised

    for action in rule.actions:
        performed: dict[str, Any] = action.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(action, ChangeStatus):
            update({"status": action.status})
        elif isinstance(action, ChangePriority):
            target = _stepped_priority(outcome.ticket.priority, action.priority)
            performed["result"] = target.value
            update({"priority": target})
        elif isinstance(action, AssignToUser):
            update({"assigned_to_user_id": action.user_id})
        elif isinstance(action, AssignToTeam):
            update({"assigned_to_team_id": action.team_id})
        elif isinstance(action, AssignToRotation):
            slots = outcome.rotations.get(action.rotation_id)
            if slots is None:
                needed.add(action.rotation_id)
                performed["userId"] = None
            else:
                pick = pick_next(slots)
                outcome.rotations[action.rotation_id] = [dataclasses.replace(slot, current=current)
                                                         for slot, current in zip(slots, pick.currents)]
                performed["userId"] = pick.user_id
                if pick.user_id is not None:
                    update({"assigned_to_user_id": pick.user_id})
        elif isinstance(action, AddTags):
            update(tags=TagEdit(add=list(action.tags)))
        elif isinstance(action, RemoveTags):
            update(tags=TagEdit(remove=list(action.tags)))
        elif isinstance(action, SetCustomField):
            changes.check_custom_fields_size({**outcome.ticket.custom_fields, action.key: action.value})
            update({"custom_fields": {action.key: action.value}})
        elif isinstance(action, AddInternalNote):
            changes.check_open(outcome.ticket)
            note = changes.NewComment(id=0, body=action.body, is_internal=True, author_type=AuthorType.SYSTEM)
            outcome.ticket, raised = changes.comment(outcome.ticket, note, actor, now)
            raised[0] = raised[0].model_copy(update={"data": {**raised[0].data, "note": action.body}})
            outcome.events += raised
        elif isinstance(action, SendNotification):
            outcome.events.append(_notification(outcome.ticket, rule, action, actor, now))
        elif isinstance(action, PauseSla):
            outcome.clock_pause, outcome.pause_reason = True, action.reason or f"automation:{rule.id}"
        elif isinstance(action, ResumeSla):
            outcome.clock_pause = False
        outcome.performed.append(performed)
    return outcome


def _execution(base: dict[str, Any], **fields: Any) -> Execution:
    return Execution(**base, **fields)


def _no_timer() -> float:
    return 0.0


def evaluate(before: records.Ticket | None, ticket: records.Ticket, events: list[TicketEvent],
             rules: list[AutomationRule], now: datetime, context: Context | None = None, *,
             timer: Callable[[], float] = _no_timer) -> Evaluation:
    """Run the rules the change's ``events`` trigger on ``ticket`` (the ticket after the change;
    ``before`` the ticket before it, None for a create). ``timer`` (seconds, e.g.
    ``time.perf_counter``) only measures each execution's time."""
    context = context or Context()
    ordered = sorted((rule for rule in rules if rule.enabled), key=attrgetter("execution_order", "id"))
    result = Evaluation(ticket=ticket, rotations=dict(context.rotations))
    if not ordered or ticket.deleted_at is not None:
        return result
    needed: set[int] = set()
    fired: set[int] = set()
    origin = {"kind": "event", "actor": events[0].actor.kind if events else "system"}
    step: _Step | None = _Step(_causes(events, origin), before, _comment_of(events, context.comment), 1)
    while step is not None and step.causes:
        start = result.ticket
        raised: list[tuple[Trigger, int | None, dict[str, Any]]] = []
        raised_events: list[TicketEvent] = []
        only_rule = context.only_rule if step.depth == 1 else None
        for rule in ordered:
            cause = step.cause_for(rule)
            if cause is None or rule.id in fired or (only_rule is not None and only_rule != rule.id):
                continue
            began = timer()
            ticket_now, comment = result.ticket, step.comment
            checked = []
            for condition in rule.conditions:
                actual = actual_value(ticket_now, condition.field, comment)
                checked.append(ConditionResult(  # the operator as the str it is (a StrEnum)
                    condition.field, condition.operator, condition.value, _json(actual),
                    matches(condition, ticket_now, comment=comment, before=step.before, actual=actual)))
            if checked and not (all(c.matched for c in checked) if rule.conditions_match == "all"
                                else any(c.matched for c in checked)):
                # The common case with many rules, kept short: one record, nothing else.
                result.executions.append(Execution(
                    rule.id, rule.trigger.value, "skipped", False, cause, step.depth, now, rule.name, checked,
                    execution_time_ms=(timer() - began) * 1000))
                continue
            base = dict(rule_id=rule.id, rule_name=rule.name, trigger=rule.trigger.value, caused_by=cause,
                        depth=step.depth, executed_at=now, condition_results=checked)
            fired.add(rule.id)
            actor = Actor(kind=f"automation:{rule.id}")
            if step.depth > MAX_DEPTH:  # it would fire, but the cascade is too deep: stop here
                result.executions.append(_execution(base, status="loop_stopped", conditions_matched=True,
                                                   error_message=f"cascade deeper than {MAX_DEPTH} steps: stopped",
                                                   execution_time_ms=(timer() - began) * 1000))
                result.events.append(TicketEvent(type=EXECUTED_EVENT, occurred_at=now, actor=actor, data={
                    "ruleId": rule.id, "status": "loop_stopped", "depth": step.depth}))
                continue
            try:
                outcome = _perform(rule, result.ticket, now, result.rotations, needed, context.missing_references)
            except (DomainError, ValueError) as error:  # ValueError: a value the ticket's fields refuse (pydantic)
                message = error.message if isinstance(error, DomainError) else str(error).splitlines()[0]
                result.executions.append(_execution(base, status="failed", conditions_matched=True,
                                                   error_message=message,
                                                   execution_time_ms=(timer() - began) * 1000))
                result.events.append(TicketEvent(type=EXECUTED_EVENT, occurred_at=now, actor=actor, data={
                    "ruleId": rule.id, "status": "failed", "error": message}))
                continue
            before_values, after_values = _difference(result.ticket, outcome.ticket)
            result.ticket, result.rotations = outcome.ticket, outcome.rotations
            if outcome.clock_pause is not None:
                result.clock_pause, result.pause_reason = outcome.clock_pause, outcome.pause_reason
            execution = _execution(base, status="success", conditions_matched=True, actions_performed=outcome.performed,
                                  before=before_values, after=after_values, execution_time_ms=(timer() - began) * 1000)
            result.executions.append(execution)
            result.events.append(TicketEvent(type=EXECUTED_EVENT, occurred_at=now, actor=actor, data={
                "ruleId": rule.id, "status": "success", "trigger": rule.trigger.value,
                "actions": [a["type"] for a in outcome.performed]}))
            result.events += outcome.events
            raised += _causes(outcome.events, {"kind": "execution", "ruleId": rule.id, "depth": step.depth})
            raised_events += outcome.events
        step = _Step(raised, start, _comment_of(raised_events, None), step.depth + 1) if raised else None
    result.rotations_needed = sorted(needed - set(context.rotations))
    if result.ticket != ticket:
        version = (before.version if before is not None else 0)
        result.ticket = result.ticket.model_copy(update={
            "version": ticket.version if ticket.version > version else version + 1, "updated_at": now})
    return result


def trigger_event(trigger: Trigger, ticket: records.Ticket, rule_id: int, now: datetime) -> TicketEvent:
    """An event raising ``trigger`` on the ticket as it is (a dry run's cause): nothing changes,
    so ``changed*`` conditions do not hold in a dry run's first step."""
    system = Actor.system()
    if trigger == Trigger.TICKET_CREATED:
        return TicketEvent(type="ticket_created", occurred_at=now, actor=system)
    if trigger == Trigger.STATUS_CHANGED:
        return TicketEvent(type="status_changed", occurred_at=now, actor=system, field="status",
                           to_value=ticket.status.value)
    if trigger == Trigger.PRIORITY_CHANGED:
        return TicketEvent(type="field_changed", occurred_at=now, actor=system, field="priority",
                           to_value=ticket.priority.value)
    if trigger == Trigger.ASSIGNED:
        return TicketEvent(type="field_changed", occurred_at=now, actor=system, field="assigned_to_user_id",
                           to_value=ticket.assigned_to_user_id or 0)
    if trigger == Trigger.TICKET_UPDATED:
        return TicketEvent(type="field_changed", occurred_at=now, actor=system)
    if trigger == Trigger.TIME_IN_STATUS:
        return TicketEvent(type="time_in_status", occurred_at=now, actor=system, data={"ruleId": rule_id})
    return TicketEvent(type=trigger.value, occurred_at=now, actor=system)
