"""The SLA clock: pure functions over plain data (no I/O, no clock: ``now`` is a parameter).

A ticket under an SLA policy runs two **metrics**: *first response* (stops at the first public
agent comment) and *resolution* (stops at ``resolved``/``closed``, resumes on reopen where it
stopped). Each metric counts **business time** — only inside the policy's calendar open hours
(``None`` = 24×7) and only while the ticket is not **paused** (its status is one of the policy's
``pause_statuses``, or an agent paused it by hand).

The :class:`SlaLedger` is what the ticket workflow keeps: per metric the business time used in
finished segments plus the start of the segment counting now, the last evaluated state, the due
date, and the decision (``met``). Everything the ticket row shows is derived from it by
:func:`snapshot`; the next instants something changes by ``pulse.domain.agenda.sla_items``. Every operation
returns a new ledger plus the :class:`SlaEvent` s it caused (``sla_at_risk``, ``sla_breached`` …)
— the events that automation and escalation consume.

Semantics (also in the project docs):

* ``used`` is exact business time (microseconds). A metric is ``at_risk`` once
  ``used >= target × atRiskPercent / 100`` and ``breached`` once ``used >= target`` (the timer
  fires *at* the due instant, so the due instant itself is breached). It is **met** when it stops
  with ``used < target``; ``met`` turns ``False`` as soon as the metric breaches (it can no longer
  be met), and stays ``None`` while the outcome is open.
* ``firstResponseTime`` / ``resolutionTime`` are the metric's business minutes (pauses and closed
  hours excluded), rounded to the nearest whole minute. Resolving a ticket that never got a public
  agent reply stops the first-response metric too (met if resolved in time), without a
  ``firstResponseTime``.
* Due dates are exact instants. While paused, a metric's due date is the one it would have had if
  the clock had resumed at the pause instant (fixed during the pause); resuming moves it by
  exactly the business time spent paused. ``slaTotalPausedTime`` counts the business minutes of
  completed pauses (the time the clock would otherwise have counted).
* A policy change (priority change, or a changed policy picked up at the next change) re-targets
  running metrics keeping their used time; a target already used up breaches at once and its
  due date becomes the moment of the change. A due date already passed never moves again.
  Decided metrics keep their decision.
* ``slaStatus`` is ``paused`` while paused, else the worst state of the metrics still running;
  once none runs it is ``breached`` if any metric was missed, else ``on_time``. ``slaBreachedAt`` is
  the first breach of any metric and is never cleared.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse.domain.calendar import BusinessCalendar, add_business_time, business_time_between
from pulse.domain.tickets import Priority, TicketStatus

ONE_MINUTE = timedelta(minutes=1)
ZERO = timedelta(0)
# Workflow timers may fire a hair early relative to microsecond-exact due instants (the server
# keeps milliseconds): a due instant within this tolerance of ``now`` counts as reached.
DUE_TOLERANCE = timedelta(milliseconds=2)


class SlaMetric(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaState(StrEnum):
    ON_TIME = "on_time"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


_SEVERITY = {SlaState.ON_TIME: 0, SlaState.AT_RISK: 1, SlaState.BREACHED: 2}

DEFAULT_PAUSE_STATUSES: tuple[TicketStatus, ...] = (TicketStatus.WAITING_CUSTOMER,)
PAUSABLE_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus.OPEN,
    TicketStatus.IN_PROGRESS,
    TicketStatus.WAITING_CUSTOMER,
)
DEFAULT_AT_RISK_PERCENT = 80
# (first response minutes, resolution minutes) per priority: the brief's defaults.
DEFAULT_TARGETS: dict[Priority, tuple[int, int]] = {
    Priority.URGENT: (15, 240),
    Priority.HIGH: (60, 480),
    Priority.MEDIUM: (240, 1440),
    Priority.LOW: (480, 2880),
}
STOPPING_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class SlaPolicy(BaseModel):
    """The targets that apply to one ticket (a stored policy with its calendar resolved)."""

    model_config = ConfigDict(frozen=True)

    policy_id: int | None = None
    name: str = ""
    first_response_minutes: int = Field(gt=0)
    resolution_minutes: int = Field(gt=0)
    at_risk_percent: int = Field(default=DEFAULT_AT_RISK_PERCENT, ge=1, le=100)
    pause_statuses: tuple[TicketStatus, ...] = DEFAULT_PAUSE_STATUSES
    calendar_id: int | None = None
    calendar: BusinessCalendar | None = None
    version: int = 1

    @field_validator("pause_statuses")
    @classmethod
    def _only_pausable(cls, value: tuple[TicketStatus, ...]) -> tuple[TicketStatus, ...]:
        for status in value:
            if status not in PAUSABLE_STATUSES:
                raise ValueError(f"{status.value} cannot pause the SLA clock (the clock stops there anyway)")
        return tuple(dict.fromkeys(value))

    def target(self, metric: SlaMetric) -> timedelta:
        minutes = self.first_response_minutes if metric == SlaMetric.FIRST_RESPONSE else self.resolution_minutes
        return minutes * ONE_MINUTE

    def at_risk_after(self, metric: SlaMetric) -> timedelta:
        return self.target(metric) * self.at_risk_percent / 100

    def same_targets(self, other: "SlaPolicy") -> bool:
        return self.model_dump(exclude={"name", "version"}) == other.model_dump(exclude={"name", "version"})


def default_policy(priority: Priority) -> SlaPolicy:
    first_response, resolution = DEFAULT_TARGETS[priority]
    return SlaPolicy(name=f"{priority.value} (default)", first_response_minutes=first_response,
                     resolution_minutes=resolution)


class TicketFacts(BaseModel):
    """What policy selection looks at."""

    priority: Priority
    tags: list[str] = []
    type_id: int | None = None
    category_id: int | None = None
    team_id: int | None = None


class PolicyConditions(BaseModel):
    """When a conditional policy applies: every condition given must hold (a list means any of
    its values; ``tags``: the ticket has at least one of them)."""

    model_config = ConfigDict(extra="forbid")

    priorities: list[Priority] | None = None
    tags: list[str] | None = None
    type_ids: list[int] | None = None
    category_ids: list[int] | None = None
    team_ids: list[int] | None = None

    @field_validator("tags")
    @classmethod
    def _lower_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [tag.strip().lower() for tag in value if tag.strip()]

    def is_empty(self) -> bool:
        return all(value is None for value in self.model_dump().values())

    def matches(self, facts: TicketFacts) -> bool:
        checks = (
            (self.priorities, lambda: facts.priority in self.priorities),
            (self.tags, lambda: bool(set(self.tags or ()) & set(facts.tags))),
            (self.type_ids, lambda: facts.type_id in self.type_ids),
            (self.category_ids, lambda: facts.category_id in self.category_ids),
            (self.team_ids, lambda: facts.team_id in self.team_ids),
        )
        return all(check() for given, check in checks if given is not None)


class PolicyCandidate(BaseModel):
    """A stored policy as selection sees it: conditional ones (by ``order``) before the one of the
    ticket's priority."""

    policy: SlaPolicy
    priority: Priority | None = None
    conditions: PolicyConditions | None = None
    order: int = 0
    enabled: bool = True


def choose_policy(candidates: list[PolicyCandidate], facts: TicketFacts) -> SlaPolicy:
    """The first enabled conditional policy that matches (by ``order``, then id), else the
    priority's policy, else the built-in default for the priority."""
    conditional = sorted(
        (c for c in candidates if c.conditions is not None and c.enabled),
        key=lambda c: (c.order, c.policy.policy_id or 0),
    )
    for candidate in conditional:
        if candidate.conditions is not None and candidate.conditions.matches(facts):
            return candidate.policy
    for candidate in candidates:
        if candidate.conditions is None and candidate.priority == facts.priority:
            return candidate.policy
    return default_policy(facts.priority)


class MetricClock(BaseModel):
    """One metric's clock. It *counts* while ``running_since`` is set; ``used`` holds the business
    time of the segments before it."""

    active: bool = True
    running_since: datetime | None = None
    used: timedelta = ZERO
    state: SlaState = SlaState.ON_TIME
    due_at: datetime | None = None
    met: bool | None = None
    breached_at: datetime | None = None
    stopped_at: datetime | None = None
    elapsed_minutes: int | None = None


class SlaLedger(BaseModel):
    """Everything the ticket workflow keeps about the SLA (carried across continue-as-new)."""

    policy: SlaPolicy
    first_response: MetricClock = Field(default_factory=MetricClock)
    resolution: MetricClock = Field(default_factory=MetricClock)
    paused_by_status: bool = False
    paused_manually: bool = False
    pause_reason: str | None = None
    paused_since: datetime | None = None
    total_paused: timedelta = ZERO
    breached_at: datetime | None = None
    status: SlaState = SlaState.ON_TIME

    @property
    def paused(self) -> bool:
        return self.paused_by_status or self.paused_manually

    def clock(self, metric: SlaMetric) -> MetricClock:
        return self.first_response if metric == SlaMetric.FIRST_RESPONSE else self.resolution

    def running_metrics(self) -> list[SlaMetric]:
        return [metric for metric in SlaMetric if self.clock(metric).active]


EventType = Literal[
    "sla_started",
    "sla_at_risk",
    "sla_breached",
    "sla_paused",
    "sla_resumed",
    "sla_metric_completed",
    "sla_metric_resumed",
    "sla_retargeted",
]


class SlaEvent(BaseModel):
    """Something the SLA clock did. ``sla_at_risk`` and ``sla_breached`` are the events automation
    rules (triggers of the same names) and escalation consume; all are logged on the timeline."""

    type: EventType
    occurred_at: datetime
    metric: SlaMetric | None = None
    data: dict[str, Any] = {}


class SlaSnapshot(BaseModel):
    """The SLA fields stored on the ticket row (snake_case names of the ticket columns)."""

    sla_policy_id: int | None = None
    sla_status: SlaState | None = None
    sla_first_response_due: datetime | None = None
    sla_first_response_met: bool | None = None
    sla_resolution_due: datetime | None = None
    sla_resolution_met: bool | None = None
    sla_breached_at: datetime | None = None
    sla_paused_at: datetime | None = None
    sla_total_paused_time: int = 0
    first_response_time: int | None = None
    resolution_time: int | None = None


# -- reading the clock ----------------------------------------------------------------------------

def _calendar(ledger: SlaLedger) -> BusinessCalendar | None:
    return ledger.policy.calendar


def used_time(ledger: SlaLedger, metric: SlaMetric, now: datetime) -> timedelta:
    """Business time the metric has counted up to ``now``."""
    clock = ledger.clock(metric)
    if clock.running_since is None or now <= clock.running_since:
        return clock.used
    return clock.used + business_time_between(_calendar(ledger), clock.running_since, now)


def _add(ledger: SlaLedger, start: datetime, amount: timedelta) -> datetime | None:
    """``start`` + ``amount`` of business time; None when the calendar never gets there."""
    try:
        return add_business_time(_calendar(ledger), start, amount)
    except ValueError:
        return None


def instant_at(ledger: SlaLedger, metric: SlaMetric, amount: timedelta) -> datetime | None:
    """When the metric will have counted ``amount`` of business time, if it is counting and has not
    got there yet (else None). Escalation uses it for "85 % of resolution" style thresholds."""
    clock = ledger.clock(metric)
    if not clock.active or clock.running_since is None or clock.used >= amount:
        return None
    return _add(ledger, clock.running_since, amount - clock.used)


def _state_for(ledger: SlaLedger, metric: SlaMetric, used: timedelta) -> SlaState:
    policy = ledger.policy
    if used >= policy.target(metric):
        return SlaState.BREACHED
    if used >= policy.at_risk_after(metric):
        return SlaState.AT_RISK
    return SlaState.ON_TIME


def _overall(ledger: SlaLedger) -> SlaState:
    running = ledger.running_metrics()
    if running and ledger.paused:
        return SlaState.PAUSED
    if running:
        return max((ledger.clock(m).state for m in running), key=_SEVERITY.__getitem__)
    missed = any(ledger.clock(m).met is False for m in SlaMetric)
    return SlaState.BREACHED if missed else SlaState.ON_TIME


def _minutes(amount: timedelta) -> int:
    return int((amount / ONE_MINUTE) + 0.5)


def snapshot(ledger: SlaLedger | None) -> SlaSnapshot:
    if ledger is None:
        return SlaSnapshot()
    first, resolution = ledger.first_response, ledger.resolution
    return SlaSnapshot(
        sla_policy_id=ledger.policy.policy_id,
        sla_status=ledger.status,
        sla_first_response_due=first.due_at,
        sla_first_response_met=first.met,
        sla_resolution_due=resolution.due_at,
        sla_resolution_met=resolution.met,
        sla_breached_at=ledger.breached_at,
        sla_paused_at=ledger.paused_since,
        sla_total_paused_time=_minutes(ledger.total_paused),
        first_response_time=first.elapsed_minutes,
        resolution_time=resolution.elapsed_minutes,
    )


# -- changing the clock ---------------------------------------------------------------------------

class _Change:
    """A ledger being changed at ``now``, collecting the events it causes."""

    def __init__(self, ledger: SlaLedger, now: datetime) -> None:
        self.ledger = ledger.model_copy(deep=True)
        self.now = now
        self.events: list[SlaEvent] = []

    def emit(self, type: EventType, metric: SlaMetric | None = None, at: datetime | None = None,
             **data: Any) -> None:
        self.events.append(SlaEvent(type=type, occurred_at=at or self.now, metric=metric, data=data))

    def settle(self, metric: SlaMetric) -> None:
        """Fold the counting segment into ``used`` and restart it at ``now``."""
        clock = self.ledger.clock(metric)
        if clock.running_since is not None:
            clock.used = used_time(self.ledger, metric, self.now)
            clock.running_since = self.now

    def sync_counting(self) -> None:
        """Start/stop counting to match ``active`` and the pause flags; account pause intervals."""
        ledger, now = self.ledger, self.now
        running = ledger.running_metrics()
        if not running:
            ledger.paused_manually, ledger.pause_reason = False, None  # a manual pause ends with the clocks
        paused = ledger.paused and bool(running)
        if paused and ledger.paused_since is None:
            ledger.paused_since = now
        elif not paused and ledger.paused_since is not None:
            paused_for = business_time_between(_calendar(ledger), ledger.paused_since, now)
            ledger.total_paused += paused_for
            ledger.paused_since = None
            if running:
                self.emit("sla_resumed", pausedMinutes=_minutes(paused_for))
        for metric in SlaMetric:
            clock = ledger.clock(metric)
            counting = clock.active and not paused
            if counting and clock.running_since is None:
                clock.running_since = now
            elif not counting and clock.running_since is not None:
                self.settle(metric)
                clock.running_since = None

    def refresh_due(self, metric: SlaMetric) -> None:
        """The metric's due date: exact while time remains (while paused: as if the clock had
        resumed at the pause instant); a due date that passed stays; a target used up without a
        due date in the past (a re-target) is due now."""
        clock = self.ledger.clock(metric)
        target = self.ledger.policy.target(metric)
        if used_time(self.ledger, metric, self.now) >= target:
            if clock.due_at is None or clock.due_at > self.now:
                clock.due_at = self._crossing(metric, target)
            return
        start = clock.running_since or self.ledger.paused_since or self.now
        clock.due_at = _add(self.ledger, start, target - clock.used)

    def evaluate_metric(self, metric: SlaMetric) -> None:
        """Re-derive a running metric's state; emit ``sla_at_risk``/``sla_breached`` on the way up."""
        ledger = self.ledger
        clock = ledger.clock(metric)
        if not clock.active:
            return
        self.refresh_due(metric)
        new_state = _state_for(ledger, metric, used_time(ledger, metric, self.now))
        if new_state == clock.state:
            return
        worse = _SEVERITY[new_state] > _SEVERITY[clock.state]
        clock.state = new_state
        if new_state == SlaState.BREACHED:
            at = self._crossing(metric, ledger.policy.target(metric))
            clock.met = False
            if clock.breached_at is None:
                clock.breached_at = at
            if ledger.breached_at is None or at < ledger.breached_at:
                ledger.breached_at = at
            self.emit("sla_breached", metric, at, dueAt=clock.due_at.isoformat() if clock.due_at else None,
                      targetMinutes=ledger.policy.target(metric) / ONE_MINUTE)
            return
        clock.met = None
        if new_state == SlaState.AT_RISK and worse:
            at = self._crossing(metric, ledger.policy.at_risk_after(metric))
            self.emit("sla_at_risk", metric, at, dueAt=clock.due_at.isoformat() if clock.due_at else None,
                      percent=ledger.policy.at_risk_percent)

    def _crossing(self, metric: SlaMetric, amount: timedelta) -> datetime:
        """The instant the metric crossed ``amount``: exact when it crossed inside the current
        counting segment, else ``now`` (e.g. a re-target below the time already used)."""
        clock = self.ledger.clock(metric)
        if clock.running_since is not None and clock.used < amount:
            instant = _add(self.ledger, clock.running_since, amount - clock.used)
            if instant is not None and instant <= self.now:
                return instant
        return self.now

    def stop(self, metric: SlaMetric, *, record_time: bool = True) -> None:
        """The metric is achieved (or can no longer be): decide ``met`` and record its minutes."""
        clock = self.ledger.clock(metric)
        if not clock.active:
            return
        self.evaluate_metric(metric)  # a threshold passed since the last evaluation still counts
        self.settle(metric)
        target = self.ledger.policy.target(metric)
        clock.active = False
        clock.running_since = None
        clock.stopped_at = self.now
        clock.met = clock.used < target
        clock.elapsed_minutes = _minutes(clock.used) if record_time else None
        self.emit("sla_metric_completed", metric, met=clock.met, minutes=_minutes(clock.used),
                  targetMinutes=target / ONE_MINUTE)

    def reopen(self, metric: SlaMetric) -> None:
        """Resume a stopped metric where it stopped (its used time is kept)."""
        clock = self.ledger.clock(metric)
        if clock.active:
            return
        clock.active = True
        clock.met = None
        clock.stopped_at = None
        clock.elapsed_minutes = None  # its state stays: a breach before the stop is not announced again
        self.emit("sla_metric_resumed", metric, usedMinutes=_minutes(clock.used))

    def finish(self) -> tuple[SlaLedger, list[SlaEvent]]:
        self.sync_counting()
        for metric in SlaMetric:
            self.evaluate_metric(metric)
        self.ledger.status = _overall(self.ledger)
        return self.ledger, self.events


def start(policy: SlaPolicy, status: TicketStatus, now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """A fresh ledger for a ticket created at ``now`` in ``status``."""
    change = _Change(SlaLedger(policy=policy), now)
    change.emit("sla_started", policyId=policy.policy_id,
                firstResponseMinutes=policy.first_response_minutes, resolutionMinutes=policy.resolution_minutes)
    change.ledger.paused_by_status = status in policy.pause_statuses
    if change.ledger.paused_by_status:
        change.emit("sla_paused", reason=f"status {status.value}")
    change.sync_counting()
    if status in STOPPING_STATUSES:
        change.stop(SlaMetric.FIRST_RESPONSE, record_time=False)
        change.stop(SlaMetric.RESOLUTION)
    return change.finish()


def change_status(ledger: SlaLedger, old: TicketStatus, new: TicketStatus,
                  now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """Follow a status change: pause in pause statuses, stop at resolved/closed, resume resolution
    on reopen (resolved → in_progress)."""
    if old == new:
        return ledger, []
    change = _Change(ledger, now)
    was_paused = change.ledger.paused
    if new in STOPPING_STATUSES:
        change.stop(SlaMetric.FIRST_RESPONSE, record_time=False)
        change.stop(SlaMetric.RESOLUTION)
    elif old == TicketStatus.RESOLVED:
        change.reopen(SlaMetric.RESOLUTION)
    change.ledger.paused_by_status = new in change.ledger.policy.pause_statuses
    if change.ledger.paused and not was_paused and change.ledger.running_metrics():
        change.emit("sla_paused", reason=f"status {new.value}")
    return change.finish()


def follow(ledger: SlaLedger | None, *, policy: SlaPolicy | None, status_before: TicketStatus,
           status: TicketStatus, first_responded_at: datetime | None, created_at: datetime,
           now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """Everything a committed change does to the clock, in order: start it (no ledger yet: at the
    ticket's creation, under ``policy``); re-target to ``policy`` (when one was loaded); follow the
    status change; stop first response at the first public agent reply."""
    events: list[SlaEvent] = []
    if ledger is None:
        if policy is None:
            raise ValueError("starting the SLA clock needs a policy")
        ledger, events = start(policy, status_before, created_at)
    elif policy is not None:
        ledger, events = retarget(ledger, policy, status, now)
    if status != status_before:
        ledger, caused = change_status(ledger, status_before, status, now)
        events += caused
    if first_responded_at is not None and ledger.first_response.active:
        ledger, caused = first_response(ledger, max(first_responded_at, now))
        events += caused
    return ledger, events


def first_response(ledger: SlaLedger, now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """The first public agent comment: the first-response metric stops."""
    if not ledger.first_response.active:
        return ledger, []
    change = _Change(ledger, now)
    change.stop(SlaMetric.FIRST_RESPONSE)
    return change.finish()


def pause(ledger: SlaLedger, now: datetime, reason: str | None) -> tuple[SlaLedger, list[SlaEvent]]:
    """A manual pause (a no-op when already paused by hand)."""
    if ledger.paused_manually or not ledger.running_metrics():
        return ledger, []
    change = _Change(ledger, now)
    was_paused = change.ledger.paused
    change.ledger.paused_manually = True
    change.ledger.pause_reason = reason
    if not was_paused:
        change.emit("sla_paused", reason=reason or "manual", manual=True)
    return change.finish()


def resume(ledger: SlaLedger, now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """End a manual pause (a pause by status lasts until the status changes)."""
    if not ledger.paused_manually:
        return ledger, []
    change = _Change(ledger, now)
    change.ledger.paused_manually = False
    change.ledger.pause_reason = None
    return change.finish()


def retarget(ledger: SlaLedger, policy: SlaPolicy, status: TicketStatus,
             now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """Apply another policy (priority change, edited policy) keeping the time already used. Used
    time up to ``now`` is measured with the old calendar, from then on with the new one (an
    ongoing pause is measured with the new one when it ends)."""
    if ledger.policy == policy:
        return ledger, []
    change = _Change(ledger, now)
    for metric in SlaMetric:
        change.settle(metric)
    old = change.ledger.policy
    change.ledger.policy = policy
    if not old.same_targets(policy):
        change.emit("sla_retargeted", policyId=policy.policy_id, fromPolicyId=old.policy_id,
                    firstResponseMinutes=policy.first_response_minutes,
                    resolutionMinutes=policy.resolution_minutes, atRiskPercent=policy.at_risk_percent,
                    calendarId=policy.calendar_id)
    was_paused = change.ledger.paused
    change.ledger.paused_by_status = status in policy.pause_statuses
    if change.ledger.paused and not was_paused and change.ledger.running_metrics():
        change.emit("sla_paused", reason=f"status {status.value}")
    return change.finish()


def tick(ledger: SlaLedger, now: datetime) -> tuple[SlaLedger, list[SlaEvent]]:
    """Re-evaluate at ``now`` (a timer fired): at-risk and breach transitions."""
    return _Change(ledger, now).finish()
