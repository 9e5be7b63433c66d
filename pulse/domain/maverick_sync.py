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

from pulse.domain import records
from pulse.domain.changes import Actor, NewTicket, TicketChanges, TicketEvent
from pulse.domain.maverick import EXTERNAL_SOURCE, pulse_priority, pulse_status
from pulse.domain.tickets import ALLOWED_TRANSITIONS, TicketSource, TicketStatus

MAVERICK_ACTOR = Actor(kind="maverick")
TRACKED_PULSE_FIELDS = ("subject", "description", "priority", "status")
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


def _subject(remote: RemoteTicket, subject: str | None = None) -> str:
    text = remote.subject if subject is None else subject
    return text.strip()[:MAX_SUBJECT] or f"Maverick ticket {remote.id}"[:MAX_SUBJECT]


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


class SyncConflict(BaseModel):
    """Both sides changed ``field`` since the last sync: the later change won."""

    field: str
    pulse_value: Any = None
    maverick_value: Any = None
    winner: str  # pulse | maverick


def remote_changes(applied: Mapping[str, Any], remote: RemoteTicket, status_overrides: Mapping[str, str] | None,
                   ticket: records.Ticket, placement: Placement | None,
                   pulse_changed_at: Mapping[str, datetime] | None = None
                   ) -> tuple[TicketChanges, list[str], list[SyncConflict]]:
    """The changes a pull applies to the linked ticket: each tracked field whose remote value
    differs from the one last applied. ``placement`` (type and category) only when the category
    changed. Also the reasons of what was left out (a status Pulse cannot move to from its own),
    and the conflicts: a field Pulse changed too since the last sync, to a third value — the
    later change wins (Pulse's time: ``pulse_changed_at[field]``, its latest change of that field
    not made by Maverick, else the ticket's last update)."""
    changed = [field for field in TRACKED_FIELDS if applied.get(field) != remote.snapshot()[field]]
    wanted: dict[str, Any] = {}
    if "subject" in changed:
        wanted["subject"] = _subject(remote)
    if "body" in changed:
        wanted["description"] = (remote.body or "")[:MAX_DESCRIPTION] or None
    if "priority" in changed:
        wanted["priority"] = pulse_priority(remote.priority)
    if "status" in changed:
        wanted["status"] = pulse_status(remote.status, status_overrides)
    conflicts: list[SyncConflict] = []
    if applied:  # a first sighting has nothing to conflict with
        before = {"subject": _subject(remote, str(applied.get("subject") or "")),
                  "description": (applied.get("body") or "")[:MAX_DESCRIPTION] or None,
                  "priority": pulse_priority(applied.get("priority")),
                  "status": pulse_status(str(applied.get("status")), status_overrides)}
        for field in list(wanted):
            ours = getattr(ticket, field)
            if ours in (before[field], wanted[field]):
                continue  # Pulse left it alone, or agrees
            pulse_time = (pulse_changed_at or {}).get(field) or ticket.updated_at
            winner = "maverick" if remote.updated_at > pulse_time else "pulse"
            conflicts.append(SyncConflict(field=field, pulse_value=_plain(ours), maverick_value=_plain(wanted[field]),
                                          winner=winner))
            if winner == "pulse":
                del wanted[field]
    skipped: list[str] = []
    if "category_id" in changed and placement is not None:
        wanted["type_id"], wanted["category_id"] = placement.type_id, placement.category_id
    if "status" in wanted:
        target = reachable_status(ticket.status, wanted.pop("status"))
        if target is None:
            skipped.append(f"status {remote.status}: Pulse cannot move the ticket from {ticket.status.value}")
        elif target != ticket.status:
            wanted["status"] = target
    return _valid(TicketChanges, wanted), skipped, conflicts


def conflict_events(conflicts: list[SyncConflict], actor: Actor, now: datetime) -> list[TicketEvent]:
    """``sync_conflict`` timeline entries: from the losing value to the winning one, both named."""
    return [TicketEvent(type="sync_conflict", occurred_at=now, actor=actor, field=conflict.field,
                        from_value=conflict.maverick_value if conflict.winner == "pulse" else conflict.pulse_value,
                        to_value=conflict.pulse_value if conflict.winner == "pulse" else conflict.maverick_value,
                        data={"winner": conflict.winner, "pulseValue": conflict.pulse_value,
                              "maverickValue": conflict.maverick_value})
            for conflict in conflicts]


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


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
    signal while a fetch runs makes it read once more). ``fields_only``: every event since the last
    read announced a change of the ticket's own fields, so its comments and documents are not
    read; the remote version is then left for the next pull or full fetch to apply."""

    account_id: int
    maverick_ticket_id: str
    fields_only: bool = False


# In a link's remembered remote fields: the remote version they are of (ahead of the link's
# version after a fields-only read, whose comments and documents are left for the next pull).
FIELDS_VERSION = "fields_version"

# Events announcing a change of a ticket's own fields: a fetch for these alone reads the ticket,
# not its comments and documents (each comment or document announces itself).
FIELD_EVENTS = frozenset({"ticket.updated", "ticket.status_changed"})


class FetchRequested(BaseModel):
    event_id: str | None = None
    event_type: str | None = None  # None (a signal sent before it was carried): read everything


def fields_only(event_types: set[str | None]) -> bool:
    """Whether a fetch for these announced events may leave comments and documents unread."""
    return bool(event_types) and all(kind in FIELD_EVENTS for kind in event_types)
