"""Ticket merge vocabulary shared by the workflow and the API. Pure."""

from __future__ import annotations

from pulse.domain import records
from pulse.domain.errors import Conflict, ValidationFailed
from pulse.domain.tickets import TicketStatus, format_ticket_number


def merge_note(secondaries: list[tuple[int, str]]) -> str:
    """The internal note left on the primary ticket: which tickets (number, subject) were merged."""
    listed = ", ".join(f"{format_ticket_number(number)} ({subject})" for number, subject in secondaries)
    noun = "ticket" if len(secondaries) == 1 else "tickets"
    return f"Merged {noun} {listed} into this ticket; their comments are copied here in time order."


def check_mergeable(ticket: records.Ticket, *, as_primary: bool) -> None:
    """A merged ticket merges no further; a closed one neither gives nor takes a merge."""
    if ticket.merged_into_ticket_id is not None:
        which = "the primary ticket was itself" if as_primary else "already"
        raise ValidationFailed(f"{which} merged into ticket {ticket.merged_into_ticket_id}", code="already_merged")
    if ticket.status == TicketStatus.CLOSED:
        if as_primary:
            raise Conflict("the primary ticket is closed; closed tickets are read-only", code="ticket_closed")
        raise Conflict("the ticket is closed; closed tickets are archived and cannot be merged", code="ticket_closed")
