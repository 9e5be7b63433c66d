"""The agenda: every instant a ticket has something due, from any number of sources.

A *source* is a pure function of what is known about a ticket (:class:`AgendaFacts`) that gives
:class:`DueItem` s ``(kind, key, at, summary)``. The ticket workflow sleeps until the earliest
item that has not fired yet, acts on it by ``kind``, and remembers ``(kind, key)`` as fired for
the current *cycle* (:class:`AgendaMemory`), so each item fires exactly once per SLA cycle — a
reopen starts a new cycle (the cycle is the ticket's ``reopenCount``). The memory travels with
the workflow's state across continue-as-new; the act itself is idempotent by
``(ticket, kind, key, cycle)`` in the database, so a worker restart between the act and the
memory cannot fire anything twice either.

Sources today: the SLA thresholds (:func:`sla_items`), the account's escalation rules
(:func:`escalation_items`) and agenda probes (a rule kind that exists so the engine's fan-out can
be proven on every open ticket; see docs/decisions.md). Time-based automation rules add a function
to :data:`SOURCES`; the workflow's loop does not change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from pydantic import BaseModel, ConfigDict

from pulse.domain import automation, escalation, records, sla
from pulse.domain.tickets import TicketStatus

# A due instant within this of ``now`` counts as reached (the server keeps milliseconds).
DUE_TOLERANCE = sla.DUE_TOLERANCE


class DueItem(BaseModel):
    """Something due at ``at``: ``kind`` picks who acts on it, ``key`` tells the items of one kind
    apart, ``summary`` is the timer's text in the Temporal UI."""

    model_config = ConfigDict(frozen=True)

    kind: str
    key: str
    at: datetime
    summary: str

    @property
    def ident(self) -> str:
        return f"{self.kind}:{self.key}"


class AgendaMemory(BaseModel):
    """Which items already fired in ``cycle``. A new cycle forgets the previous one's."""

    cycle: int = 0
    fired: list[str] = []

    def in_cycle(self, cycle: int) -> "AgendaMemory":
        if cycle == self.cycle:
            return self
        return AgendaMemory(cycle=cycle)

    def has_fired(self, item: DueItem) -> bool:
        return item.ident in self.fired

    def only(self, items: list[DueItem]) -> "AgendaMemory":
        """Forget fired items no longer on the agenda (they cannot fire; the act itself is
        idempotent by cycle and item, should one come back within the cycle)."""
        idents = {item.ident for item in items}
        kept = [ident for ident in self.fired if ident in idents]
        return self if kept == self.fired else AgendaMemory(cycle=self.cycle, fired=kept)

    def remember(self, item: DueItem, cycle: int) -> "AgendaMemory":
        memory = self.in_cycle(cycle)
        if memory.has_fired(item):
            return memory
        return AgendaMemory(cycle=memory.cycle, fired=[*memory.fired, item.ident])


def pending(items: list[DueItem], memory: AgendaMemory, cycle: int) -> list[DueItem]:
    """The items still to fire in ``cycle``, earliest first (ties by kind, then key)."""
    current = memory.in_cycle(cycle)
    return sorted((item for item in items if not current.has_fired(item)),
                  key=lambda item: (item.at, item.kind, item.key))


def next_item(items: list[DueItem], memory: AgendaMemory, cycle: int) -> DueItem | None:
    """The earliest item still to fire; None: nothing is due, so no timer at all."""
    remaining = pending(items, memory, cycle)
    return remaining[0] if remaining else None


def due_items(items: list[DueItem], memory: AgendaMemory, cycle: int, now: datetime) -> list[DueItem]:
    """Every item still to fire whose instant has come (within :data:`DUE_TOLERANCE`)."""
    return [item for item in pending(items, memory, cycle) if item.at <= now + DUE_TOLERANCE]


# -- sources --------------------------------------------------------------------------------------

class AgendaProbe(BaseModel):
    """An account-wide agenda rule: due ``after_minutes`` after the ticket's creation."""

    model_config = ConfigDict(frozen=True)

    id: int
    after_minutes: int


class TicketRules(BaseModel):
    """The account-wide rules the agenda's sources read, and their generation (bumped by every
    change; a ticket whose rules are older re-computes its agenda)."""

    generation: int = 0
    probes: list[AgendaProbe] = []
    escalations: list[escalation.EscalationRule] = []
    automations: list[automation.AutomationRule] = []  # enabled, by executionOrder then id

    def escalation_rule(self, rule_id: int) -> escalation.EscalationRule | None:
        return next((rule for rule in self.escalations if rule.id == rule_id), None)


class AgendaFacts(BaseModel):
    """What the sources see of one ticket."""

    status: TicketStatus
    created_at: datetime
    cycle: int = 0
    ledger: sla.SlaLedger | None = None
    rules: TicketRules = TicketRules()
    ticket: records.Ticket | None = None


SLA_KIND = "sla"
PROBE_KIND = "probe"


def _metric_label(metric: sla.SlaMetric) -> str:
    return metric.value.replace("_", " ")


def sla_items(facts: AgendaFacts) -> list[DueItem]:
    """Each running SLA metric's next thresholds: at-risk (while on time) and breach. Nothing while
    paused or stopped; the ledger itself says which were crossed, so each crosses once. A key names
    its instant: a re-targeted clock (a priority change) has new thresholds, which fire in turn."""
    ledger = facts.ledger
    if ledger is None:
        return []
    items = []
    for metric in sla.SlaMetric:
        clock = ledger.clock(metric)
        if not clock.active or clock.running_since is None:
            continue
        label = _metric_label(metric)
        if clock.state == sla.SlaState.ON_TIME:
            at_risk = sla.instant_at(ledger, metric, ledger.policy.at_risk_after(metric))
            if at_risk is not None:
                items.append(DueItem(kind=SLA_KIND, key=f"{metric.value}:at_risk@{at_risk.isoformat()}", at=at_risk,
                                     summary=f"{label} {ledger.policy.at_risk_percent} % → at risk"))
        if clock.state in (sla.SlaState.ON_TIME, sla.SlaState.AT_RISK):
            breach = sla.instant_at(ledger, metric, ledger.policy.target(metric))
            if breach is not None:
                items.append(DueItem(kind=SLA_KIND, key=f"{metric.value}:breach@{breach.isoformat()}", at=breach,
                                     summary=f"{label} 100 % → breached"))
    return items


def probe_items(facts: AgendaFacts) -> list[DueItem]:
    if facts.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return []
    return [
        DueItem(kind=PROBE_KIND, key=str(probe.id), at=facts.created_at + timedelta(minutes=probe.after_minutes),
                summary=f"agenda probe {probe.id}: {probe.after_minutes} min after creation")
        for probe in facts.rules.probes
    ]


ESCALATION_KIND = escalation.ESCALATION_KIND


def escalation_items(facts: AgendaFacts) -> list[DueItem]:
    """Each enabled escalation rule of the ticket's priority, at its threshold."""
    return [
        DueItem(kind=ESCALATION_KIND, key=f"{rule.id}@{at.isoformat()}", at=at,
                summary=f"escalation level {rule.level}: {rule.when.describe()} → {rule.escalate_to.value}")
        for rule, at in escalation.items(facts.ticket, facts.ledger, facts.rules.escalations)
    ]


AUTOMATION_KIND = automation.AUTOMATION_KIND


def automation_items(facts: AgendaFacts) -> list[DueItem]:
    """Each enabled ``time_in_status`` rule for the ticket's status, due ``afterMinutes`` after the
    ticket entered it. The key names the rule, the status and the instant it was entered, so a
    ticket that leaves and re-enters the status has a new item (the rule is re-armed)."""
    ticket = facts.ticket
    if ticket is None or facts.status == TicketStatus.CLOSED:
        return []
    entered = ticket.status_changed_at or ticket.created_at
    items = []
    for rule in facts.rules.automations:
        config = rule.trigger_config
        if rule.trigger != automation.Trigger.TIME_IN_STATUS or config is None or config.status != facts.status:
            continue
        items.append(DueItem(kind=AUTOMATION_KIND, key=f"{rule.id}:{config.status.value}@{entered.isoformat()}",
                             at=entered + timedelta(minutes=config.after_minutes),
                             summary=f"automation {rule.id}: {config.after_minutes} min in {config.status.value}"))
    return items


Source = Callable[[AgendaFacts], list[DueItem]]
SOURCES: tuple[Source, ...] = (sla_items, probe_items, escalation_items, automation_items)


def agenda_of(facts: AgendaFacts) -> list[DueItem]:
    """Every source's items for one ticket."""
    return [item for source in SOURCES for item in source(facts)]
