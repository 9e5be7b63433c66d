"""Merging tickets (``POST /api/tickets/merge``).

The API checks the request as a whole (404 for tickets of other accounts, 422 for an empty list,
the primary in the list, an already merged ticket), then sends **one update to the primary
ticket's workflow** (``TicketWorkflow.merge``). The primary's workflow merges the secondaries one at a
time: the secondary's **own workflow** writes its side (``merge_into``: ``mergedIntoTicketId``,
closed, its SLA clock stops, its workflow ends), asked through the gateway by an activity; then
the primary's write copies the secondary's comments with their original times (so the primary's
thread reads in time order) and a link back (``mergedFromTicketId``), its attachments (each
content once: bytes the primary holds already are not copied again), unites the tags and logs
the merge, in one transaction. A secondary that fails is reported in ``errors`` and left as it
was. Finally an internal merge note goes on the primary. Each ticket's row is written only by its
own workflow.

Comments and attachments are copied, not moved: the secondary stays a complete, read-only record
of what was said and sent on it, and its comments are searchable on the primary. Copies are never
pushed to Maverick (no ``comment_added`` / ``attachment_added`` event): each document moves once.
"""

from __future__ import annotations

import time
from typing import Any

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.commands import MergeTicketsInput
from pulse.domain.errors import Conflict, ValidationFailed
from pulse.domain.tickets import TicketStatus
from pulse.models import Ticket
from pulse.services.auth import Principal
from pulse.services.tickets import TicketService, actor_of
from pulse.gateway import NoRunningWorkflow

MAX_TICKETS_PER_MERGE = 100


class MergeService:
    """The API side: checks the request, then one update to the primary ticket's workflow."""

    def __init__(self, sessions: SessionFactory, tickets: TicketService) -> None:
        self.sessions = sessions
        self.tickets = tickets

    async def merge(self, principal: Principal, primary_ref: str, secondary_refs: list[str], *,
                    merge_comments: bool, close_secondary_tickets: bool, add_merge_note: bool,
                    merge_attachments: bool = True) -> dict[str, Any]:
        started = time.monotonic()
        if not secondary_refs:
            raise ValidationFailed("name at least one ticket to merge", details=[
                {"field": "ticketIdsToMerge", "message": "must not be empty"}])
        if len(secondary_refs) > MAX_TICKETS_PER_MERGE:
            raise ValidationFailed(f"at most {MAX_TICKETS_PER_MERGE} tickets per merge", details=[
                {"field": "ticketIdsToMerge", "message": f"at most {MAX_TICKETS_PER_MERGE} tickets"}])
        account_id = principal.account_id
        primary = await self.tickets.resolve(account_id, primary_ref)
        secondaries: dict[int, Ticket] = {}
        for reference in secondary_refs:
            ticket = await self.tickets.resolve(account_id, reference)  # 404 for other accounts
            secondaries.setdefault(ticket.id, ticket)
        if primary.id in secondaries:
            raise ValidationFailed("the primary ticket cannot be merged into itself", details=[
                {"field": "ticketIdsToMerge", "message": f"contains the primary ticket {primary.id}"}])
        if primary.merged_into_ticket_id is not None:
            raise ValidationFailed(
                f"the primary ticket was merged into ticket {primary.merged_into_ticket_id}; merge into that one",
                code="already_merged",
                details=[{"field": "primaryTicketId", "message": "already merged"}])
        merged_before = [t for t in secondaries.values() if t.merged_into_ticket_id is not None]
        if merged_before:
            raise ValidationFailed("tickets that were already merged cannot be merged again", code="already_merged",
                                   details=[{"field": "ticketIdsToMerge",
                                             "message": f"ticket {t.id} was merged into ticket {t.merged_into_ticket_id}"}
                                            for t in merged_before])
        if primary.status == TicketStatus.CLOSED.value:
            raise Conflict("the primary ticket is closed; closed tickets are read-only", code="ticket_closed")

        command = MergeTicketsInput(
            actor=actor_of(principal),
            secondary_ticket_ids=list(secondaries),
            merge_comments=merge_comments,
            merge_attachments=merge_attachments,
            close_secondary_tickets=close_secondary_tickets,
            add_merge_note=add_merge_note,
        )
        try:
            result = await self.tickets.gateway.merge(account_id, primary.id, command)
        except NoRunningWorkflow:  # its workflow was lost: a run that loads the ticket takes the merge
            result = await self.tickets.gateway.merge(account_id, primary.id, command, resume=True)
        return {
            "success": not result.errors,
            "primaryTicketId": primary.id,
            "mergedTicketIds": result.merged_ticket_ids,
            "commentsMerged": result.comments_merged,
            "attachmentsMerged": result.attachments_merged,
            "secondaryTicketsClosed": result.secondary_tickets_closed,
            "mergeNote": result.merge_note,
            "errors": [{"ticketId": e.ticket_id, "error": e.error, "code": e.code} for e in result.errors],
            "executionTime": round((time.monotonic() - started) * 1000),
        }
