"""The whole change pipeline of one write, pure: change → rules hook → SLA clock → agenda.

``pulse.services.ticket_engine`` loads what this needs (the locked ticket, its SLA ledger, the
policy when it must be re-read, the account's rules), calls :func:`run`, and stores what it
returns — row, ledger, timeline and outbox — in the same transaction. Nothing here does I/O, so
a dry run (the automation issue's ``/test``) is the same call without the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from pydantic import BaseModel

from pulse.domain import records, sla
from pulse.domain.agenda import PROBE_KIND, SLA_KIND, AgendaFacts, DueItem, TicketRules, agenda_of
from pulse.domain.changes import Actor, TicketEvent
from pulse.domain.errors import DomainError
from pulse.domain.tickets import TicketStatus


class ClockChange(BaseModel):
    """What the write asks of the SLA clock beyond following the ticket."""

    policy: sla.SlaPolicy | None = None  # re-target (or start) under this policy
    pause: bool | None = None  # True: pause by hand; False: resume
    pause_reason: str | None = None
    tick_at: datetime | None = None  # a threshold came due: evaluate at this instant


class PipelineResult(BaseModel):
    ticket: records.Ticket
    events: list[TicketEvent]
    ledger: sla.SlaLedger | None
    agenda: list[DueItem]


def apply_rules(ticket: records.Ticket, events: list[TicketEvent], rules: TicketRules,
                now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    """The rules hook: automation rules see the ticket after the change and the events it raised,
    in order, each seeing the changes of the ones before it; their changes raise their own events.
    The account's rules hold no automation rules yet (the automation issue adds them here)."""
    return ticket, events


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


def run(before: records.Ticket | None, change: Change, *, actor: Actor, now: datetime,
        ledger: sla.SlaLedger | None, rules: TicketRules, clock: ClockChange | None = None) -> PipelineResult:
    """Apply ``change`` to the stored ticket (``before``; None for a create), run the rules hook,
    move the SLA clock (follow the ticket; re-target to ``clock.policy`` when given; pause, resume
    or tick when asked) and store its fields on the ticket, and compute the agenda."""
    after, events = change(before)
    after, events = apply_rules(after, events, rules, now)
    status_before = before.sla_status if before is not None else None
    ledger, sla_events = _move_clock(before, after, ledger, clock or ClockChange(), now)
    if ledger is not None and after.deleted_at is None:
        after = after.model_copy(update=sla.snapshot(ledger).model_dump())
    events += clock_events(sla_events, actor, status_before, after.sla_status)
    return PipelineResult(ticket=after, events=events, ledger=ledger, agenda=agenda_of(facts_of(after, ledger, rules)))


def due(before: records.Ticket, item: DueItem, actor: Actor) -> tuple[records.Ticket, list[TicketEvent], ClockChange]:
    """What acting on a due agenda item changes, by kind (the clock's part is a tick)."""
    if item.kind == SLA_KIND:
        return before, [], ClockChange(tick_at=item.at)
    if item.kind == PROBE_KIND:
        return before, [TicketEvent(type="agenda_probe_fired", occurred_at=item.at, actor=actor,
                                    data={"probeId": item.key, "summary": item.summary})], ClockChange()
    raise DomainError(f"no action for agenda items of kind {item.kind!r}", code="unknown_agenda_item", status=422)


def sla_flags(ledger: sla.SlaLedger | None, status: TicketStatus) -> tuple[bool, bool, bool]:
    """(running, paused by status, paused by hand) for the workflow's validators."""
    if ledger is None:
        return False, False, False
    return bool(ledger.running_metrics()), ledger.paused_by_status, ledger.paused_manually


def agenda_of_ticket(ticket: records.Ticket, ledger: sla.SlaLedger | None, rules: TicketRules) -> list[DueItem]:
    return agenda_of(facts_of(ticket, ledger, rules))
