"""Escalation rules: multi-level, time- or SLA-percentage-based, as items on a ticket's agenda.

A rule applies to tickets of its priority (or ``all``). Its threshold is ``afterMinutes`` of
ticket age, ``noFirstResponseMinutes`` without a public agent reply, or ``slaPercent`` of an SLA
metric (measured by the SLA clock, so pauses and the calendar count). ``businessHoursOnly``
measures the age thresholds in the ticket's SLA calendar. Each (rule, ticket) escalates at most
once per SLA cycle (the agenda's memory and the act's idempotency); conditions are checked at the
instant the threshold is reached. Several rules for one priority are its levels.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from pulse.domain import records, sla
from pulse.domain.calendar import add_business_minutes
from pulse.domain.changes import Actor, TicketEvent, assignment_event
from pulse.domain.conditions import Condition
from pulse.domain.notify import notify_payload
from pulse.domain.tickets import Priority, TicketStatus, format_ticket_number

ESCALATION_KIND = "escalation"
CHANNELS = ("email", "sms", "slack", "in_app")


class EscalateTo(StrEnum):
    MANAGER = "manager"
    TEAM = "team"
    SPECIFIC_USER = "specific_user"
    ROTATION = "rotation"


class EscalationWhen(BaseModel):
    """Exactly one threshold: ticket age, no first response, or a percentage of an SLA metric."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    after_minutes: int | None = Field(default=None, ge=0, le=525_600,
                                      validation_alias=AliasChoices("afterMinutes", "escalateAfterMinutes",
                                                                    "after_minutes"))
    no_first_response_minutes: int | None = Field(default=None, ge=0, le=525_600,
                                                  validation_alias=AliasChoices("noFirstResponseMinutes",
                                                                                "no_first_response_minutes"))
    sla_percent: float | None = Field(default=None, gt=0, le=1000,
                                      validation_alias=AliasChoices("slaPercent", "sla_percent"))
    metric: sla.SlaMetric | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> "EscalationWhen":
        given = [v for v in (self.after_minutes, self.no_first_response_minutes, self.sla_percent) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of afterMinutes, noFirstResponseMinutes, slaPercent")
        if self.sla_percent is not None and self.metric is None:
            raise ValueError("slaPercent needs metric: first_response or resolution")
        if self.sla_percent is None and self.metric is not None:
            raise ValueError("metric goes with slaPercent")
        return self

    def describe(self) -> str:
        if self.after_minutes is not None:
            return f"{self.after_minutes} min after creation"
        if self.no_first_response_minutes is not None:
            return f"no first response in {self.no_first_response_minutes} min"
        assert self.metric is not None
        return f"{self.metric.value.replace('_', ' ')} {self.sla_percent:g} %"

    def to_api(self) -> dict[str, Any]:
        if self.after_minutes is not None:
            return {"afterMinutes": self.after_minutes}
        if self.no_first_response_minutes is not None:
            return {"noFirstResponseMinutes": self.no_first_response_minutes}
        return {"slaPercent": self.sla_percent, "metric": self.metric.value if self.metric else None}


# Variables of ``internalNoteTemplate``: ``{{name}}``.
TEMPLATE_VARIABLES = ("ticketNumber", "subject", "priority", "status", "level", "ruleName", "slaResolutionDue",
                      "slaFirstResponseDue", "assignedToUserId", "assignedToTeamId", "escalateTo", "thresholdAt")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
DEFAULT_NOTE = "Escalated to level {{level}} ({{ruleName}}): {{escalateTo}}."


def unknown_template_variables(template: str) -> list[str]:
    return sorted({name for name in _VARIABLE.findall(template) if name not in TEMPLATE_VARIABLES})


class EscalationRule(BaseModel):
    """A stored rule as the engine uses it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    enabled: bool = True
    priority: Priority | Literal["all"] = "all"
    level: int = Field(default=1, ge=1, le=100)
    conditions: list[Condition] = []
    when: EscalationWhen
    escalate_to: EscalateTo
    escalate_to_user_id: int | None = None
    escalate_to_team_id: int | None = None
    escalate_to_rotation_id: int | None = None
    reassign: bool = False
    notification_channels: list[str] = ["in_app"]
    business_hours_only: bool = False
    add_internal_note: bool = False
    internal_note_template: str | None = None
    version: int = 1

    def applies_to(self, ticket: records.Ticket) -> bool:
        return self.enabled and (self.priority == "all" or self.priority == ticket.priority)


def _after(ticket: records.Ticket, ledger: sla.SlaLedger | None, minutes: int, business_hours: bool) -> datetime:
    """``minutes`` into the current SLA cycle: from the creation, or from the last reopen."""
    start = ticket.last_reopened_at or ticket.created_at
    calendar = ledger.policy.calendar if ledger is not None else None
    if business_hours and calendar is not None:
        return add_business_minutes(calendar, start, minutes)
    return start + timedelta(minutes=minutes)


def threshold(rule: EscalationRule, ticket: records.Ticket, ledger: sla.SlaLedger | None) -> datetime | None:
    """When ``rule`` falls due for ``ticket``; None while it cannot (paused, stopped, responded)."""
    when = rule.when
    if when.after_minutes is not None:
        return _after(ticket, ledger, when.after_minutes, rule.business_hours_only)
    if when.no_first_response_minutes is not None:
        if ticket.first_responded_at is not None:
            return None
        return _after(ticket, ledger, when.no_first_response_minutes, rule.business_hours_only)
    if ledger is None or when.metric is None or when.sla_percent is None:
        return None
    clock = ledger.clock(when.metric)
    if not clock.active or clock.running_since is None:
        return None  # stopped or paused: no timer
    amount = ledger.policy.target(when.metric) * when.sla_percent / 100
    if clock.used >= amount:
        return clock.running_since  # already past it (a rule added later): due at once
    return sla.instant_at(ledger, when.metric, amount)


def is_due(rule: EscalationRule, ticket: records.Ticket, ledger: sla.SlaLedger | None, now: datetime) -> bool:
    """Whether the rule, as it is now, has reached its threshold for the ticket at ``now`` (an item
    armed under an earlier version of the rule may come due before its fan-out re-arms it)."""
    at = threshold(rule, ticket, ledger)
    return at is not None and at <= now + timedelta(milliseconds=2)


def items(ticket: records.Ticket | None, ledger: sla.SlaLedger | None,
          rules: list[EscalationRule]) -> list[tuple[EscalationRule, datetime]]:
    if ticket is None or ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return []
    found = []
    for rule in rules:
        if rule.applies_to(ticket):
            at = threshold(rule, ticket, ledger)
            if at is not None:
                found.append((rule, at))
    return found


class ResolvedTarget(BaseModel):
    """Who an escalation goes to, resolved when it fires."""

    user_ids: list[int] = []
    team_id: int | None = None
    description: str = ""


def render_note(template: str | None, ticket: records.Ticket, rule: EscalationRule, target: ResolvedTarget,
                threshold_at: datetime) -> str:
    values = {
        "ticketNumber": ticket.ticket_number, "subject": ticket.subject, "priority": ticket.priority.value,
        "status": ticket.status.value, "level": str(rule.level), "ruleName": rule.name,
        "slaResolutionDue": ticket.sla_resolution_due.isoformat() if ticket.sla_resolution_due else "",
        "slaFirstResponseDue": ticket.sla_first_response_due.isoformat() if ticket.sla_first_response_due else "",
        "assignedToUserId": str(ticket.assigned_to_user_id or ""),
        "assignedToTeamId": str(ticket.assigned_to_team_id or ""),
        "escalateTo": target.description, "thresholdAt": threshold_at.isoformat(),
    }
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template or DEFAULT_NOTE)


def escalate(ticket: records.Ticket, rule: EscalationRule, target: ResolvedTarget, threshold_at: datetime,
             now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    """The escalation's change: counters, the level reached, an optional reassignment, and the
    ``escalated`` event (which notifies the target on the rule's channels)."""
    actor = Actor(kind=f"escalation:{rule.id}")
    after = ticket.model_copy(deep=True)
    after.escalation_count += 1
    after.escalation_level = max(after.escalation_level, rule.level)
    events: list[TicketEvent] = []
    reassigned = False
    if rule.reassign:
        user_id = target.user_ids[0] if len(target.user_ids) == 1 else None
        for field, value in (("assigned_to_user_id", user_id), ("assigned_to_team_id", target.team_id)):
            if value is not None and getattr(after, field) != value:
                events.append(assignment_event(after, actor, TicketEvent(
                    type="field_changed", occurred_at=now, actor=actor, field=field,
                    from_value=getattr(after, field), to_value=value)))
                setattr(after, field, value)
                reassigned = True
    events.insert(0, TicketEvent(type="escalated", occurred_at=now, actor=actor, data={
        "ruleId": rule.id, "level": rule.level, "thresholdAt": threshold_at.isoformat(),
        "escalateTo": rule.escalate_to.value, "targetUserIds": target.user_ids, "targetTeamId": target.team_id,
        "reassigned": reassigned, "channels": rule.notification_channels,
        "notify": notify_payload(
            kind="escalation", reason=f"escalation:{rule.id}", channels=rule.notification_channels,
            user_ids=target.user_ids, team_id=target.team_id,
            subject=f"[{format_ticket_number(ticket.number)}] escalated to level {rule.level}: {ticket.subject}",
            text=f"{format_ticket_number(ticket.number)} ({ticket.priority.value}) escalated to level {rule.level} "
                 f"by rule {rule.name!r} ({rule.when.describe()}): {ticket.subject}",
        ),
    }))
    after.version += 1
    after.updated_at = now
    return after, events
