"""One input model per message, so fields can be added without breaking running workflows.

Three kinds: what callers send a ticket's workflow (``…Input``, through ``pulse.gateway``); what
the workflow sends its activities (``…Command``: one typed input per activity, idempotent by
``command_id``); and what the activities answer (:class:`TicketWrite`).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from pulse.domain import records
from pulse.domain.agenda import AgendaMemory, DueItem
from pulse.domain.attachments import Attachment, NewAttachment
from pulse.domain.maverick_sync import SyncConflict
from pulse.domain.changes import Actor, NewTicket, TagEdit, TicketChanges
from pulse.domain.tickets import AuthorType, Priority, TicketStatus

__all__ = ["Actor"]


# -- what callers send a ticket's workflow ------------------------------------------------------

class CreateTicketInput(BaseModel):
    account_id: int
    ticket_id: int
    number: int  # allocated with the id, before the workflow starts (its search attributes show it)
    actor: Actor
    ticket: NewTicket


class UpdateTicketInput(BaseModel):
    actor: Actor
    changes: TicketChanges = TicketChanges()
    expected_version: int | None = None
    tags: TagEdit | None = None  # bulk add_tags / remove_tags, relative to the tags when applied
    # The caller's own idempotency id (a bulk item); None: the update's id.
    command_id: str | None = None
    # A Maverick pull that found both sides changed: recorded on the timeline as sync_conflict.
    sync_conflicts: list[SyncConflict] = []


class AddCommentInput(BaseModel):
    actor: Actor
    body: str
    is_internal: bool = False
    notify_customer: bool = False
    author_type: AuthorType = AuthorType.AGENT
    mentions: list[int] = []
    command_id: str | None = None  # from the request's Idempotency-Key


class AddAttachmentInput(BaseModel):
    """An attachment whose content is stored already; ``command_id`` from an Idempotency-Key or a
    Maverick document id, so a retried upload or import adds it once."""

    actor: Actor
    attachment: NewAttachment
    command_id: str | None = None


class DeleteAttachmentInput(BaseModel):
    """Delete one attachment of the ticket (``DELETE /api/tickets/{id}/attachments/{attachmentId}``)."""

    actor: Actor
    attachment_id: int
    command_id: str | None = None


class DeleteTicketInput(BaseModel):
    actor: Actor
    expected_version: int | None = None
    command_id: str | None = None


class PauseSlaInput(BaseModel):
    """Manual SLA pause (``POST /api/tickets/{id}/sla/pause``)."""

    actor: Actor
    reason: str | None = None


class ResumeSlaInput(BaseModel):
    actor: Actor
    reason: str | None = None


class MergeTicketsInput(BaseModel):
    """Merge secondaries into this (the primary) ticket."""

    actor: Actor
    secondary_ticket_ids: list[int]
    merge_comments: bool = True
    merge_attachments: bool = True
    close_secondary_tickets: bool = True
    add_merge_note: bool = True


class MergeIntoInput(BaseModel):
    """Sent by a primary's merge to each secondary: this ticket is merged into ``primary_ticket_id``
    (its own workflow writes that, and closes it when asked)."""

    actor: Actor
    primary_ticket_id: int
    primary_number: int
    close: bool = True
    command_id: str


class RulesChanged(BaseModel):
    """The account's rules reached ``generation``: re-compute the agenda (fan-out signal)."""

    generation: int


class TicketWorkflowInput(BaseModel):
    account_id: int
    ticket_id: int
    state: "TicketWorkflowState | None" = None
    # A run for a ticket that exists already (its workflow had ended: closed, or missing): it loads
    # the ticket first, takes the command that started it, and ends again when the ticket is closed.
    resume: bool = False


class Delivery(BaseModel):
    """One outbox event for one consumer (``pulse.domain.outbox``)."""

    event_id: int
    consumer: str
    event_type: str


class TicketWorkflowState(BaseModel):
    """What the ticket workflow keeps (and carries across continue-as-new). The ticket itself and
    its SLA clock live in PostgreSQL; the workflow keeps what its loop and validators need."""

    account_id: int
    ticket_id: int
    loaded: bool = False
    number: int | None = None
    status: TicketStatus = TicketStatus.OPEN
    priority: Priority = Priority.MEDIUM
    team_id: int | None = None
    sla_status: str | None = None
    version: int = 0
    deleted: bool = False
    sla_running: bool = False  # some SLA metric counts (a manual pause is possible)
    sla_paused_by_status: bool = False
    sla_paused_manually: bool = False
    agenda: list[DueItem] = []
    memory: AgendaMemory = AgendaMemory()
    cycle: int = 0
    rules_generation: int = 0
    agenda_refreshes: int = 0  # how many times the rules' fan-out made it re-compute
    rules_wanted: int = 0  # the newest rules generation signalled (kept across continue-as-new)
    write_sequence: int = 0  # the last write of the ticket taken over (older outcomes are answers, not news)
    pending: list[Delivery] = []  # outbox deliveries under way
    system_writes: int = 0  # numbers the workflow's own commands (due items, deliveries' ids)


TicketWorkflowInput.model_rebuild()


# -- what the workflow sends its activities -----------------------------------------------------

class TicketCommand(BaseModel):
    """Envelope of one write activity call: applied once per ``command_id``."""

    command_id: str
    account_id: int
    ticket_id: int
    now: datetime


class CreateCommand(TicketCommand):
    input: CreateTicketInput


class UpdateCommand(TicketCommand):
    input: UpdateTicketInput


class CommentCommand(TicketCommand):
    input: AddCommentInput


class AttachmentCommand(TicketCommand):
    input: AddAttachmentInput


class DeleteAttachmentCommand(TicketCommand):
    input: DeleteAttachmentInput


class DeleteCommand(TicketCommand):
    input: DeleteTicketInput


class SlaPauseCommand(TicketCommand):
    actor: Actor
    pause: bool  # False: resume
    reason: str | None = None


class DueCommand(TicketCommand):
    """Act on an agenda item that came due (its ``at`` is the instant acted at)."""

    item: DueItem
    cycle: int


class MergeIntoCommand(TicketCommand):
    input: MergeIntoInput


class MergeInCommand(TicketCommand):
    """The primary's side of one merge: take the secondary's comments, attachments and tags."""

    actor: Actor
    secondary: records.Ticket
    merge_comments: bool = True
    merge_attachments: bool = True


class LoadTicketCommand(BaseModel):
    """Read the ticket, its clock and rules: a resumed run's start, or a re-computed agenda."""

    account_id: int
    ticket_id: int
    now: datetime


class MergeIntoRequest(BaseModel):
    """A primary's merge asks the secondary's workflow (through the gateway) to merge into it."""

    account_id: int
    secondary_ticket_id: int
    input: MergeIntoInput


class DeliveryCommand(BaseModel):
    account_id: int
    ticket_id: int
    delivery: Delivery


# -- what they answer -----------------------------------------------------------------------------

class TicketWrite(BaseModel):
    """A write's outcome: the ticket after it (after the rules and the SLA clock), the new comment,
    the outbox deliveries it queued, and the ticket's agenda as of this write."""

    ticket: records.Ticket | None = None  # None: no such ticket (a resumed run's load)
    comment: records.Comment | None = None
    deliveries: list[Delivery] = []
    agenda: list[DueItem] = []
    cycle: int = 0
    rules_generation: int = 0
    sla_running: bool = False
    sla_paused_by_status: bool = False
    sla_paused_manually: bool = False
    comments_merged: int = 0
    attachments_merged: int = 0
    # What automation rules did in this write ("automation:7 success: assign_to_team"; skipped
    # evaluations are in the audit trail only): readable in the write's result in the Temporal UI.
    automation: list[str] = []
    attachment: Attachment | None = None
    replayed: bool = False  # the stored outcome of a command applied before (an activity retry or a repeat)


def command_id_for(workflow_id: str, update_id: str) -> str:
    """The ``command_id`` a ticket workflow gives the activity of update ``update_id``."""
    return f"{workflow_id}/{update_id}"


# -- the rules' fan-out -----------------------------------------------------------------------------

class FanOutInput(BaseModel):
    account_id: int
    generation: int
    page_size: int = 2000


class FanOutPage(BaseModel):
    account_id: int
    generation: int
    after_id: int
    page_size: int = 2000


class FanOutProgress(BaseModel):
    signalled: int = 0
    last_id: int | None = None  # None: no open ticket after this page
    pages: int = 0
