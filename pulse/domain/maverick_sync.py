"""The inbound sync, pure: what a Maverick ticket becomes in Pulse, and which of its changes a
later pull applies. Maverick's ticket arrives as :class:`RemoteTicket` (plain data; the wire
models stay in ``pulse.integrations.maverick``).

A pull applies only the fields that changed *remotely* since the last applied version (the link
keeps their values), so an agent's change in Pulse is not undone by an unrelated remote change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from pulse.domain.changes import Actor, NewTicket, TicketChanges
from pulse.domain.maverick import EXTERNAL_SOURCE, pulse_priority, pulse_status
from pulse.domain.tickets import ALLOWED_TRANSITIONS, TicketSource, TicketStatus

MAVERICK_ACTOR = Actor(kind="maverick")
TRACKED_FIELDS = ("subject", "body", "status", "priority", "category_id")
# The stored cursor is asked for again with this overlap: a server whose updatedSince is exclusive,
# or whose clock ticks coarsely, still lists a ticket changed in the same instant as the last one
# seen (tickets seen twice are skipped by version).
CURSOR_OVERLAP = timedelta(seconds=1)
MAX_SUBJECT = 500
MAX_DESCRIPTION = 100_000


class RemoteTicket(BaseModel):
    id: str
    version: int
    updated_at: datetime
    subject: str
    body: str | None = None
    status: str
    priority: str | None = None
    category_id: int | None = None
    merchant_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in TRACKED_FIELDS}


class Placement(BaseModel):
    """Where a Maverick ticket lands: its type and category (from the mapping) and the config's
    default assignee and team."""

    type_id: int | None = None
    category_id: int | None = None
    assigned_to_user_id: int | None = None
    assigned_to_team_id: int | None = None


def since_for(cursor: datetime | None) -> datetime | None:
    return cursor - CURSOR_OVERLAP if cursor is not None else None


def _subject(remote: RemoteTicket) -> str:
    return remote.subject.strip()[:MAX_SUBJECT] or f"Maverick ticket {remote.id}"[:MAX_SUBJECT]


def new_ticket(remote: RemoteTicket, status_overrides: Mapping[str, str] | None, placement: Placement) -> NewTicket:
    """The Pulse ticket for a Maverick ticket seen for the first time. Requester fields Pulse would
    refuse (an implausible e-mail) are left empty rather than failing the import."""
    fields: dict[str, Any] = {
        "subject": _subject(remote), "description": (remote.body or "")[:MAX_DESCRIPTION] or None,
        "status": pulse_status(remote.status, status_overrides), "priority": pulse_priority(remote.priority),
        "requester_name": (remote.merchant_name or "")[:200] or None,
        "requester_email": remote.contact_email or None, "requester_phone": (remote.contact_phone or "")[:50] or None,
        "source": TicketSource.MAVERICK, "external_source": EXTERNAL_SOURCE, "external_ticket_id": remote.id,
        **{name: value for name, value in placement.model_dump().items() if value is not None},
    }
    return _valid(NewTicket, fields)


def remote_changes(applied: Mapping[str, Any], remote: RemoteTicket, status_overrides: Mapping[str, str] | None,
                   current_status: TicketStatus, placement: Placement | None) -> tuple[TicketChanges, list[str]]:
    """The changes a pull applies to the linked ticket: each tracked field whose remote value
    differs from the one last applied. ``placement`` (type and category) only when the category
    changed. Also the reasons of what was left out (a status Pulse cannot move to from its own)."""
    changed = [field for field in TRACKED_FIELDS if applied.get(field) != remote.snapshot()[field]]
    fields: dict[str, Any] = {}
    skipped: list[str] = []
    if "subject" in changed:
        fields["subject"] = _subject(remote)
    if "body" in changed:
        fields["description"] = (remote.body or "")[:MAX_DESCRIPTION] or None
    if "priority" in changed:
        fields["priority"] = pulse_priority(remote.priority)
    if "category_id" in changed and placement is not None:
        fields["type_id"], fields["category_id"] = placement.type_id, placement.category_id
    if "status" in changed:
        target = reachable_status(current_status, pulse_status(remote.status, status_overrides))
        if target is None:
            skipped.append(f"status {remote.status}: Pulse cannot move the ticket from {current_status.value}")
        elif target != current_status:
            fields["status"] = target
    return _valid(TicketChanges, fields), skipped


def reachable_status(current: TicketStatus, target: TicketStatus) -> TicketStatus | None:
    """``target`` when Pulse allows it from ``current``; a remote reopen of a resolved ticket
    (to open or waiting) is Pulse's reopen, ``in_progress``; None when nothing gets there."""
    if current == target or target in ALLOWED_TRANSITIONS[current]:
        return target
    if current == TicketStatus.RESOLVED and target in (TicketStatus.OPEN, TicketStatus.WAITING_CUSTOMER):
        return TicketStatus.IN_PROGRESS
    return None


Model = Any


def _valid(model: type[Model], fields: dict[str, Any]) -> Model:
    """The model of ``fields``, leaving out those it refuses (a second try without them)."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        refused = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
        kept = {name: value for name, value in fields.items() if name not in refused or name == "subject"}
        return model.model_validate(kept)


# -- the sync workflow's messages ----------------------------------------------------------------

class SyncInput(BaseModel):
    account_id: int
    trigger: str = "schedule"  # schedule | manual
    run_id: int | None = None  # made by the API for a manual sync; by the first activity otherwise
    # Carried across continue-as-new:
    cursor: str | None = None
    since: datetime | None = None
    cursor_frozen: bool = False
    started: bool = False


class StartSync(BaseModel):
    account_id: int
    trigger: str
    run_id: int | None = None


class SyncStarted(BaseModel):
    run_id: int
    since: datetime | None = None
    skip_reason: str | None = None


class PullPage(BaseModel):
    account_id: int
    run_id: int
    since: datetime | None = None
    cursor: str | None = None
    cursor_frozen: bool = False  # a ticket failed earlier in this run: the stored cursor stays before it


class PageResult(BaseModel):
    next_cursor: str | None = None
    pulled: int = 0
    created: int = 0
    updated: int = 0
    failed: bool = False  # some ticket could not be applied (the stored cursor stopped before it)


class FinishSync(BaseModel):
    account_id: int
    run_id: int
    status: str  # succeeded | partial | failed
    error: str | None = None


class FetchTicketInput(BaseModel):
    """A webhook said this Maverick ticket changed: read it and apply it (signal-with-start; a
    signal while a fetch runs makes it read once more)."""

    account_id: int
    maverick_ticket_id: str


class FetchRequested(BaseModel):
    event_id: str | None = None
