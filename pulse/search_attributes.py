"""Custom search attributes of ticket workflows (registered with the Temporal server)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
)

TICKET_NUMBER = SearchAttributeKey.for_keyword("TicketNumber")
TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
TICKET_TEAM = SearchAttributeKey.for_keyword("TicketTeam")
SLA_STATUS = SearchAttributeKey.for_keyword("SlaStatus")

# Published by workflows running code from the "search-attributes-details" patch on (issue 14):
# who the ticket is assigned to (user id), when its SLA metrics fall due, its escalation level.
TICKET_ASSIGNEE = SearchAttributeKey.for_keyword("TicketAssignee")
FIRST_RESPONSE_DUE = SearchAttributeKey.for_datetime("SlaFirstResponseDueAt")
RESOLUTION_DUE = SearchAttributeKey.for_datetime("SlaResolutionDueAt")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")

ALL = (TICKET_NUMBER, TICKET_STATUS, TICKET_PRIORITY, TICKET_TEAM, SLA_STATUS,
       TICKET_ASSIGNEE, FIRST_RESPONSE_DUE, RESOLUTION_DUE, ESCALATION_LEVEL)

_TYPE_NAMES = {SearchAttributeIndexedValueType.KEYWORD: "Keyword", SearchAttributeIndexedValueType.DATETIME: "Datetime",
               SearchAttributeIndexedValueType.INT: "Int"}


def registration(key: SearchAttributeKey[Any]) -> str:
    """``Name=Type`` as ``temporal server start-dev --search-attribute`` and
    ``temporal operator search-attribute create`` take it."""
    return f"{key.name}={_TYPE_NAMES[key.indexed_value_type]}"

# (number, status, priority, team id, SLA status): what a ticket workflow publishes, in this order.
Facts = tuple[Any, Any, Any, Any, Any]
_KEYS = (TICKET_NUMBER, TICKET_STATUS, TICKET_PRIORITY, TICKET_TEAM, SLA_STATUS)


def _text(index: int, value: Any) -> str:
    if index == 0:
        return f"PULSE-{value}"
    return str(getattr(value, "value", value))


def at_start(facts: Facts) -> list[SearchAttributePair[str]]:
    """The search attributes a ticket's workflow starts with."""
    return [SearchAttributePair(key, _text(i, value)) for i, (key, value) in enumerate(zip(_KEYS, facts))
            if value is not None]


def updates(before: Facts, after: Facts) -> list[SearchAttributeUpdate]:
    """The upserts that turn ``before`` into ``after`` (only what changed)."""
    changed = []
    for index, (key, old, new) in enumerate(zip(_KEYS, before, after)):
        if old == new:
            continue
        changed.append(key.value_unset() if new is None else key.value_set(_text(index, new)))
    return changed


def facts_at_create(number: int, status: Any, priority: Any, team_id: int | None) -> Facts:
    """What a new ticket's workflow is started with: its SLA status is taken to be the usual one
    for its status (a ticket created otherwise upserts it once)."""
    expected_sla = {"waiting_customer": "paused", "resolved": None, "closed": None}.get(str(status), "on_time")
    return (number, status, priority, team_id, expected_sla)


# (assignee user id, first response due, resolution due, escalation level, ticket number, subject):
# the details a ticket workflow shows besides its facts. The last two go to the memo (encrypted
# by the payload codec; the subject is customer text), the others are search attributes.
Details = tuple[Any, Any, Any, Any, Any, Any]
_DETAIL_KEYS = (TICKET_ASSIGNEE, FIRST_RESPONSE_DUE, RESOLUTION_DUE, ESCALATION_LEVEL)


def details_of(ticket: Any) -> Details:
    """The details of a committed ticket (``pulse.domain.records.Ticket``). A metric's due instant
    is shown while the metric runs (not once it is met or missed), so "due before T" finds the
    tickets still able to breach."""
    first_response_due = ticket.sla_first_response_due if ticket.sla_first_response_met is None else None
    resolution_due = ticket.sla_resolution_due if ticket.sla_resolution_met is None else None
    return (ticket.assigned_to_user_id, first_response_due, resolution_due, ticket.escalation_level,
            ticket.number, ticket.subject)


def detail_updates(before: Details | None, after: Details) -> list[SearchAttributeUpdate]:
    """The search-attribute upserts that turn ``before`` (None: nothing shown yet) into ``after``."""
    changed: list[SearchAttributeUpdate] = []
    for index, key in enumerate(_DETAIL_KEYS):
        old, new = (None if before is None else before[index]), after[index]
        if before is not None and old == new:
            continue
        if new is None:
            if before is not None:
                changed.append(key.value_unset())
        elif isinstance(new, datetime):
            changed.append(key.value_set(new))
        elif isinstance(new, int) and key is ESCALATION_LEVEL:
            changed.append(key.value_set(new))
        else:
            changed.append(key.value_set(str(new)))
    return changed


def memo_of(details: Details) -> dict[str, str]:
    """What the Temporal UI shows of a ticket beside its id: its number and subject."""
    return {"ticketNumber": f"PULSE-{details[4]}", "subject": str(details[5])[:500]}


# Saved views for the Temporal UI (README, "Tickets in the Temporal UI"); ``{soon}`` is an RFC 3339
# instant (e.g. an hour from now), ``{team_id}`` a team's id. Add ``AND WorkflowId STARTS_WITH
# 'ticket-<accountId>-'`` for one account's tickets.
SAVED_QUERIES = {
    "breaching soon": ("ExecutionStatus = 'Running' AND SlaStatus IN ('on_time', 'at_risk') "
                       "AND (SlaFirstResponseDueAt < '{soon}' OR SlaResolutionDueAt < '{soon}')"),
    "escalated": "ExecutionStatus = 'Running' AND EscalationLevel >= 1",
    "team's open tickets": ("ExecutionStatus = 'Running' AND TicketTeam = '{team_id}' "
                            "AND TicketStatus IN ('open', 'in_progress', 'waiting_customer')"),
}
