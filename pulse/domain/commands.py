"""One input model per workflow message, so fields can be added without breaking running
workflows. Field changes travel as a dict of snake_case field names → new values, already
validated by the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pulse.domain import records
from pulse.domain.sla import SlaEvent, SlaLedger, SlaSnapshot, SlaState, TicketFacts
from pulse.domain.tickets import AuthorType, Priority, TicketStatus


class Actor(BaseModel):
    """Who caused a change: ``user`` (with user_id), ``system``, ``automation:<id>`` …"""

    kind: str = "user"
    user_id: int | None = None

    @classmethod
    def system(cls) -> "Actor":
        return cls(kind="system")


class CreateTicketInput(BaseModel):
    account_id: int
    ticket_id: int
    actor: Actor
    fields: dict[str, Any]


class UpdateTicketInput(BaseModel):
    actor: Actor
    changes: dict[str, Any]
    expected_version: int | None = None
    # Tag edits relative to the ticket's tags when applied (bulk add_tags / remove_tags).
    add_tags: list[str] = []
    remove_tags: list[str] = []


class AddCommentInput(BaseModel):
    actor: Actor
    body: str
    is_internal: bool = False
    notify_customer: bool = False
    author_type: AuthorType = AuthorType.AGENT
    mentions: list[int] = []


class DeleteTicketInput(BaseModel):
    actor: Actor
    expected_version: int | None = None


class PauseSlaInput(BaseModel):
    """Manual SLA pause (``POST /api/tickets/{id}/sla/pause``)."""

    actor: Actor
    reason: str | None = None


class ResumeSlaInput(BaseModel):
    actor: Actor
    reason: str | None = None


class TicketWorkflowState(BaseModel):
    """What the ticket workflow keeps in memory (and carries across continue-as-new)."""

    account_id: int
    ticket_id: int
    number: int | None = None
    status: TicketStatus = TicketStatus.OPEN
    priority: Priority = Priority.MEDIUM
    team_id: int | None = None
    version: int = 0
    deleted: bool = False
    # The SLA clock (None: not loaded yet / no SLA) and the SLA fields last stored on the ticket.
    sla: SlaLedger | None = None
    sla_stored: SlaSnapshot | None = None
    sla_writes: int = 0  # numbers the clock's own writes (command ids), across continue-as-new


class TicketWorkflowInput(BaseModel):
    account_id: int
    ticket_id: int
    state: TicketWorkflowState | None = None


# Activity envelopes: one command applied by one activity call, idempotent by command_id.

class TicketCommand(BaseModel):
    """Envelope of one activity call."""

    command_id: str
    account_id: int
    ticket_id: int
    now: datetime


class SlaFollow(BaseModel):
    """The SLA clock as the workflow holds it, sent with a write so that the same transaction
    moves it after the change (``sla.follow``) and stores what changed."""

    command_id: str  # the clock write's own id (numbered by ``TicketWorkflowState.sla_writes``)
    ledger: SlaLedger | None = None
    reload_policy: bool = True
    stored: SlaSnapshot | None = None
    status_before: TicketStatus | None = None  # None: the written ticket's status (a create)

    def command_after(self, write: TicketCommand, actor: Actor, ticket: records.Ticket) -> "SyncSlaCommand":
        """The clock's move after ``write`` committed ``ticket`` (at the write's instant)."""
        return SyncSlaCommand(
            command_id=self.command_id, account_id=write.account_id, ticket_id=write.ticket_id, now=write.now,
            actor=actor, ledger=self.ledger, reload_policy=self.reload_policy, facts=facts_of(ticket),
            status_before=self.status_before or ticket.status, status=ticket.status,
            first_responded_at=ticket.first_responded_at, created_at=ticket.created_at, changed_at=write.now,
            stored=self.stored,
        )


class CreateTicketCommand(TicketCommand):
    payload: CreateTicketInput
    sla: SlaFollow | None = None


class UpdateTicketCommand(TicketCommand):
    payload: UpdateTicketInput
    sla: SlaFollow | None = None


class AddCommentCommand(TicketCommand):
    payload: AddCommentInput
    sla: SlaFollow | None = None


class TicketWrite(BaseModel):
    """What a create, update or comment answers: the ticket after the change and after the SLA
    clock moved (``sla.ticket`` is left empty: ``ticket`` holds it), and the new comment."""

    ticket: records.Ticket
    comment: records.Comment | None = None
    sla: SyncSlaResult | None = None  # None when the write carried no ``SlaFollow``

    @classmethod
    def from_any(cls, data: Any) -> "TicketWrite":
        """A write's outcome in any shape the ticket activities have answered with: this one, a
        ``CommentResult`` (``{comment, ticket}``), or a bare ticket (creates and updates before the
        ``sla-in-write-transaction`` change; still in ``applied_commands`` and in histories)."""
        if isinstance(data, cls):
            return data
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        if isinstance(data, dict) and "ticket" in data:
            return cls.model_validate(data)
        return cls(ticket=records.Ticket.model_validate(data))


class DeleteTicketCommand(TicketCommand):
    payload: DeleteTicketInput


class SyncSlaCommand(TicketCommand):
    """Move the SLA clock after a committed change (``sla.follow``) and store what changed — one
    local activity, one transaction: the policy for ``facts`` is (re)loaded when ``reload_policy``
    (or when the clock has not started), and the fields + events are written only if they differ
    from ``stored``."""

    actor: Actor
    ledger: SlaLedger | None = None
    reload_policy: bool = False
    facts: TicketFacts
    status_before: TicketStatus
    status: TicketStatus
    first_responded_at: datetime | None = None
    created_at: datetime
    changed_at: datetime
    stored: SlaSnapshot | None = None


class SyncSlaResult(BaseModel):
    ledger: SlaLedger
    events: list[SlaEvent] = []
    ticket: records.Ticket | None = None  # the ticket after the write; None when nothing was written


def facts_of(ticket: records.Ticket) -> TicketFacts:
    """What SLA policy selection looks at, from a stored ticket."""
    return TicketFacts(priority=ticket.priority, tags=ticket.tags, type_id=ticket.type_id,
                       category_id=ticket.category_id, team_id=ticket.assigned_to_team_id)


class RecordSlaCommand(TicketCommand):
    """Store the SLA fields on the ticket, and log + publish the SLA events, in one transaction."""

    actor: Actor
    snapshot: SlaSnapshot
    events: list[SlaEvent] = []
    status_before: SlaState | None = None  # the slaStatus the ticket shows now (for the timeline)


# Merging tickets (``POST /api/tickets/merge``): one update to the primary ticket's workflow,
# one transaction (activity) per secondary ticket.

class MergeTicketsInput(BaseModel):
    actor: Actor
    secondary_ticket_ids: list[int]
    merge_comments: bool = True
    close_secondary_tickets: bool = True
    add_merge_note: bool = True


class MergeTicketInput(BaseModel):
    """Merge one secondary ticket into the primary (the command's ``ticket_id``)."""

    actor: Actor
    secondary_ticket_id: int
    merge_comments: bool = True
    close_secondary: bool = True


class MergeTicketCommand(TicketCommand):
    payload: MergeTicketInput


def command_id_for(workflow_id: str, update_id: str) -> str:
    """The ``command_id`` a ticket workflow gives the activity of update ``update_id``: a retried
    bulk item finds its outcome in ``applied_commands`` under it."""
    return f"{workflow_id}/{update_id}"
