"""The whole change pipeline of one write, pure: change → rules hook → SLA clock → agenda.

``pulse.services.ticket_engine`` loads what this needs (the locked ticket, its SLA ledger, the
policy when it must be re-read, the account's rules), calls :func:`run`, and stores what it
returns — row, ledger, timeline and outbox — in the same transaction. Nothing here does I/O, so
a dry run (the automation issue's ``/test``) is the same call without the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from pulse.domain import automation_eval, records, sla
from pulse.domain.agenda import AUTOMATION_KIND, PROBE_KIND, SLA_KIND, AgendaFacts, DueItem, TicketRules, agenda_of
from pulse.domain.automation_eval import Context as RulesContext
from pulse.domain.automation_eval import Evaluation, Execution
from pulse.domain.changes import SLA_POLICY_FIELDS, Actor, TicketEvent
from pulse.domain.rotation import RotationSlot
from pulse.domain.errors import DomainError
from pulse.domain.tickets import TicketStatus


class ClockChange(BaseModel):
    """What the write asks of the SLA clock beyond following the ticket."""

    policy: sla.SlaPolicy | None = None  # re-target (or start) under this policy
    pause: bool | None = None  # True: pause by hand; False: resume
    pause_reason: str | None = None
    tick_at: datetime | None = None  # a threshold came due: evaluate at this instant


class PipelineResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    ticket: records.Ticket
    events: list[TicketEvent]
    ledger: sla.SlaLedger | None
    agenda: list[DueItem]
    executions: list[Execution] = []  # the automation rules' evaluations, in order
    rotations: dict[int, list[RotationSlot]] = {}  # rotations' state after the rules' picks
    rotations_needed: list[int] = []  # run again with these rotations' state (``RulesContext.rotations``)


PolicyFor = Callable[[records.Ticket], "sla.SlaPolicy | None"]
Timer = Callable[[], float]


def apply_rules(before: records.Ticket | None, ticket: records.Ticket, events: list[TicketEvent], rules: TicketRules,
                now: datetime, context: RulesContext | None, timer: Timer | None) -> Evaluation:
    """The rules hook: automation rules see the ticket after the change and the events it raised,
    in order, each seeing the changes of the ones before it; their changes raise their own events
    (:mod:`pulse.domain.automation_eval`)."""
    if timer is None:
        return automation_eval.evaluate(before, ticket, events, rules.automations, now, context)
    return automation_eval.evaluate(before, ticket, events, rules.automations, now, context, timer=timer)


def _clock_for_rules(clock: ClockChange, evaluation: Evaluation, ticket_before_rules: records.Ticket,
                     policy_for: PolicyFor | None) -> ClockChange:
    """The clock as the rules left it: their pause/resume, and a re-read policy when they changed
    a field the policy is chosen by (priority, team, tags, type, category)."""
    after = evaluation.ticket
    if evaluation.clock_pause is not None and clock.pause is None:
        clock = clock.model_copy(update={"pause": evaluation.clock_pause, "pause_reason": evaluation.pause_reason})
    if policy_for is not None and any(getattr(ticket_before_rules, f) != getattr(after, f) for f in SLA_POLICY_FIELDS):
        policy = policy_for(after)
        if policy is not None:
            clock = clock.model_copy(update={"policy": policy})
    return clock


# The slaStatus change of a batch of clock events is shown on the first of these.
_STATUS_EVENTS = ("sla_at_risk", "sla_breached", "sla_paused", "sla_resumed")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    return value


def clock_events(events: list[sla.SlaEvent], actor: Actor, status_before: str | None,
                 status_after: str | None) -> list[TicketEvent]:
    """The SLA clock's events as ticket events. Thresholds are the clock's own doing (actor
    ``system``); the slaStatus change is carried by the first status-changing event."""
    carrier = next((e for e in events if e.type in _STATUS_EVENTS), events[-1] if events else None)
    converted = []
    for event in events:
        clock_driven = event.type in ("sla_at_risk", "sla_breached")
        changed = event is carrier and status_before != status_after
        data = {**_json(event.data), "slaStatus": status_after}
        if event.metric is not None:
            data["metric"] = event.metric.value
        converted.append(TicketEvent(
            type=event.type, occurred_at=event.occurred_at,
            actor=Actor.system() if clock_driven or actor.user_id is None else actor,
            field="sla_status" if changed else None,
            from_value=status_before if changed else None, to_value=status_after if changed else None,
            data=data,
        ))
    return converted


def _move_clock(before: records.Ticket | None, after: records.Ticket, ledger: sla.SlaLedger | None,
                clock: ClockChange, now: datetime) -> tuple[sla.SlaLedger | None, list[sla.SlaEvent]]:
    events: list[sla.SlaEvent] = []
    if after.deleted_at is not None:
        return ledger, events
    if ledger is None and clock.policy is None:
        return None, events
    status_before = before.status if before is not None else after.status
    ledger, events = sla.follow(
        ledger, policy=clock.policy, status_before=status_before, status=after.status,
        first_responded_at=after.first_responded_at, created_at=after.created_at, now=now,
    )
    if clock.pause is True:
        ledger, caused = sla.pause(ledger, now, clock.pause_reason)
        events += caused
    elif clock.pause is False:
        ledger, caused = sla.resume(ledger, now)
        events += caused
    if clock.tick_at is not None:
        ledger, caused = sla.tick(ledger, clock.tick_at)
        events += caused
    return ledger, events


def facts_of(ticket: records.Ticket, ledger: sla.SlaLedger | None, rules: TicketRules) -> AgendaFacts:
    return AgendaFacts(status=ticket.status, created_at=ticket.created_at, cycle=ticket.reopen_count,
                       ledger=ledger, rules=rules, ticket=ticket)


Change = Callable[[records.Ticket | None], tuple[records.Ticket, list[TicketEvent]]]


_SLA_TRIGGERS = ("sla_at_risk", "sla_breached")


def run(before: records.Ticket | None, change: Change, *, actor: Actor, now: datetime,
        ledger: sla.SlaLedger | None, rules: TicketRules, clock: ClockChange | None = None,
        context: RulesContext | None = None, policy_for: PolicyFor | None = None,
        timer: Timer | None = None) -> PipelineResult:
    """Apply ``change`` to the stored ticket (``before``; None for a create), run the rules hook,
    move the SLA clock (follow the ticket; re-target to ``clock.policy`` when given, or to
    ``policy_for`` the ticket when rules changed what the policy is chosen by; pause, resume or
    tick when asked) and store its fields on the ticket, run the rules the clock's thresholds
    trigger (``sla_at_risk``, ``sla_breached``) and move the clock after them, and compute the
    agenda."""
    changed, events = change(before)
    evaluation = apply_rules(before, changed, events, rules, now, context, timer)
    after, events = evaluation.ticket, [*events, *evaluation.events]
    clock = _clock_for_rules(clock or ClockChange(), evaluation, changed, policy_for)
    status_before = before.sla_status if before is not None else None
    ledger, sla_events = _move_clock(before, after, ledger, clock, now)
    if ledger is not None and after.deleted_at is None:
        after = after.model_copy(update=sla.snapshot(ledger).model_dump())
    events += clock_events(sla_events, actor, status_before, after.sla_status)
    executions, rotations = list(evaluation.executions), evaluation.rotations
    needed = set(evaluation.rotations_needed)
    crossed = [event for event in events if event.type in _SLA_TRIGGERS]
    if crossed and rules.automations:
        second_context = (context or RulesContext()).model_copy(update={"rotations": rotations, "only_rule": None})
        second = apply_rules(before, after, crossed, rules, now, second_context, timer)
        executions += second.executions
        rotations = second.rotations
        needed |= set(second.rotations_needed)
        events += second.events
        if second.ticket != after:
            status_before = after.sla_status
            ledger, more = _move_clock(after, second.ticket, ledger, _clock_for_rules(ClockChange(), second, after,
                                                                                    policy_for), now)
            after = second.ticket
            if ledger is not None and after.deleted_at is None:
                after = after.model_copy(update=sla.snapshot(ledger).model_dump())
            events += clock_events(more, actor, status_before, after.sla_status)
    return PipelineResult(ticket=after, events=events, ledger=ledger, agenda=agenda_of(facts_of(after, ledger, rules)),
                          executions=executions, rotations=rotations, rotations_needed=sorted(needed))


def due(before: records.Ticket, item: DueItem, actor: Actor) -> tuple[records.Ticket, list[TicketEvent], ClockChange]:
    """What acting on a due agenda item changes, by kind (the clock's part is a tick)."""
    if item.kind == SLA_KIND:
        return before, [], ClockChange(tick_at=item.at)
    if item.kind == AUTOMATION_KIND:
        return before, time_in_status_events(before, item), ClockChange()
    if item.kind == PROBE_KIND:
        return before, [TicketEvent(type="agenda_probe_fired", occurred_at=item.at, actor=actor,
                                    data={"probeId": item.key, "summary": item.summary})], ClockChange()
    raise DomainError(f"no action for agenda items of kind {item.kind!r}", code="unknown_agenda_item", status=422)


def time_in_status_events(ticket: records.Ticket, item: DueItem) -> list[TicketEvent]:
    """A ``time_in_status`` item came due: the ``time_in_status`` event that triggers its rule, if
    the ticket is still in the status it entered at the item's instant (else nothing: it left)."""
    rule_id, _, rest = item.key.partition(":")
    status, _, entered = rest.partition("@")
    since = ticket.status_changed_at or ticket.created_at
    if ticket.status.value != status or since.isoformat() != entered:
        return []
    return [TicketEvent(type="time_in_status", occurred_at=item.at, actor=Actor.system(),
                        data={"ruleId": int(rule_id), "status": status, "since": entered, "summary": item.summary})]


def sla_flags(ledger: sla.SlaLedger | None, status: TicketStatus) -> tuple[bool, bool, bool]:
    """(running, paused by status, paused by hand) for the workflow's validators."""
    if ledger is None:
        return False, False, False
    return bool(ledger.running_metrics()), ledger.paused_by_status, ledger.paused_manually


def agenda_of_ticket(ticket: records.Ticket, ledger: sla.SlaLedger | None, rules: TicketRules) -> list[DueItem]:
    return agenda_of(facts_of(ticket, ledger, rules))
