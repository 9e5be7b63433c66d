"""Custom search attributes of ticket workflows (registered with the Temporal server)."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate

TICKET_NUMBER = SearchAttributeKey.for_keyword("TicketNumber")
TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
TICKET_TEAM = SearchAttributeKey.for_keyword("TicketTeam")
SLA_STATUS = SearchAttributeKey.for_keyword("SlaStatus")

ALL = (TICKET_NUMBER, TICKET_STATUS, TICKET_PRIORITY, TICKET_TEAM, SLA_STATUS)

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
