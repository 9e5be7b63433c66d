"""Ticket vocabulary and lifecycle rules, shared by the workflow, the activities and the API."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Iterable, Mapping

from pulse.domain.errors import InvalidTransition


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class TicketSource(StrEnum):
    WEB = "web"
    EMAIL = "email"
    API = "api"
    PHONE = "phone"
    MAVERICK = "maverick"


class AuthorType(StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    SYSTEM = "system"


class Permission(StrEnum):
    READ_SUPPORT = "readSupport"
    WRITE_SUPPORT = "writeSupport"
    MANAGE_SETTINGS = "manageSettings"


# Severity rank: higher is more severe. Sorting "priority desc" puts urgent first.
PRIORITY_SEVERITY: dict[Priority, int] = {
    Priority.LOW: 1,
    Priority.MEDIUM: 2,
    Priority.HIGH: 3,
    Priority.URGENT: 4,
}

ALLOWED_TRANSITIONS: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    TicketStatus.OPEN: (
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_CUSTOMER,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
    ),
    TicketStatus.IN_PROGRESS: (
        TicketStatus.OPEN,
        TicketStatus.WAITING_CUSTOMER,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
    ),
    TicketStatus.WAITING_CUSTOMER: (
        TicketStatus.IN_PROGRESS,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
    ),
    TicketStatus.RESOLVED: (TicketStatus.IN_PROGRESS, TicketStatus.CLOSED),
    TicketStatus.CLOSED: (),
}


def check_transition(current: TicketStatus, target: TicketStatus) -> None:
    """Raise ``InvalidTransition`` (409) naming the allowed targets unless ``current → target`` is
    allowed. Setting the current status again is allowed (a no-op)."""
    if current == target:
        return
    allowed = ALLOWED_TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(s.value for s in allowed) or "none (the ticket is closed)"
        raise InvalidTransition(
            f"cannot move a ticket from {current.value} to {target.value}; allowed: {names}",
            details=[{"field": "status", "from": current.value, "allowed": [s.value for s in allowed]}],
        )


def is_reopen(current: TicketStatus, target: TicketStatus) -> bool:
    return current == TicketStatus.RESOLVED and target == TicketStatus.IN_PROGRESS


def status_after_customer_comment(current: TicketStatus) -> TicketStatus | None:
    """A public comment from the requester moves a waiting ticket back to work and reopens a
    resolved one; otherwise the status stays."""
    if current in (TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED):
        return TicketStatus.IN_PROGRESS
    return None


_TICKET_NUMBER = re.compile(r"^PULSE-(\d+)$", re.IGNORECASE)


def format_ticket_number(number: int) -> str:
    return f"PULSE-{number}"


def parse_ticket_number(text: str) -> int | None:
    match = _TICKET_NUMBER.match(text.strip())
    return int(match.group(1)) if match else None


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Lower-cased, trimmed, unique, in first-seen order; empty tags dropped."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = tag.strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def merge_custom_fields(current: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """``customFields`` in a PATCH is a merge (RFC 7396 at the top level): the keys sent are set,
    a key sent as null is removed, keys not sent stay. So concurrent writers of different fields
    never undo each other. ``null`` for the whole object clears it."""
    if patch is None:
        return {}
    merged = dict(current or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def workflow_id_for(account_id: int, ticket_id: int) -> str:
    return f"ticket-{account_id}-{ticket_id}"
