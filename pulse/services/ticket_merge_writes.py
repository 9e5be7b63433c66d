"""One secondary ticket merged into a primary, inside the activity's transaction (see
``pulse.services.ticket_merge`` for the whole flow). Never commits."""

from __future__ import annotations

from datetime import datetime

from pulse.domain import records
from pulse.domain.commands import MergeTicketInput
from pulse.domain.errors import Conflict, NotFound, ValidationFailed
from pulse.domain.tickets import TicketStatus, format_ticket_number, normalise_tags
from pulse.models import Ticket
from pulse.repositories.ticket_merges import TicketMergeRepository
from pulse.services.ticket_writes import TicketWriter


class TicketMergeWriter(TicketWriter):
    """Applies one secondary's merge inside the activity's transaction. Never commits."""

    async def merge(self, account_id: int, primary_id: int, command: MergeTicketInput,
                    now: datetime) -> records.MergeOutcome:
        secondary_id = command.secondary_ticket_id
        if secondary_id == primary_id:
            raise ValidationFailed("a ticket cannot be merged into itself")
        locked: dict[int, Ticket | None] = {}
        for ticket_id in sorted((primary_id, secondary_id)):  # lower id first: merges never deadlock
            locked[ticket_id] = await self.tickets.get(account_id, ticket_id, for_update=True)
        primary, secondary = locked[primary_id], locked[secondary_id]
        if primary is None:
            raise NotFound(f"ticket {primary_id} not found")
        if secondary is None:
            raise NotFound(f"ticket {secondary_id} not found")
        if primary.status == TicketStatus.CLOSED.value:
            raise Conflict("the primary ticket is closed; closed tickets are read-only", code="ticket_closed")
        if primary.merged_into_ticket_id is not None:
            raise ValidationFailed(f"the primary ticket was itself merged into ticket {primary.merged_into_ticket_id}",
                                   code="already_merged")
        if secondary.merged_into_ticket_id is not None:
            raise ValidationFailed(f"already merged into ticket {secondary.merged_into_ticket_id}", code="already_merged")
        if secondary.status == TicketStatus.CLOSED.value:
            raise Conflict("the ticket is closed; closed tickets are archived and cannot be merged",
                           code="ticket_closed")

        copied = 0
        if command.merge_comments:
            comments = await TicketMergeRepository(self.session).copy_comments(secondary.id, primary.id)
            copied = comments.total
            primary.response_count += comments.public_agent
            primary.internal_note_count += comments.internal
        tags = normalise_tags([*(primary.tags or []), *(secondary.tags or [])])
        if tags != list(primary.tags or []):
            self._log(primary, "field_changed", command.actor, now, field="tags", from_value=list(primary.tags or []),
                      to_value=tags)
            primary.tags = tags
        self._log(primary, "ticket_merged_in", command.actor, now, data={
            "ticketId": secondary.id, "ticketNumber": format_ticket_number(secondary.number), "commentsMerged": copied,
        })
        primary.version += 1
        primary.updated_at = now

        secondary.merged_into_ticket_id = primary.id
        self._log(secondary, "ticket_merged", command.actor, now, field="merged_into_ticket_id", to_value=primary.id,
                  data={"primaryTicketId": primary.id, "primaryTicketNumber": format_ticket_number(primary.number)})
        if command.close_secondary:
            self._set_status(secondary, TicketStatus.CLOSED, command.actor, now)
        secondary.version += 1
        secondary.updated_at = now
        await self.session.flush()
        if copied:
            await self.search_index.refresh(primary.id)  # copied comments sit in time order
        return records.MergeOutcome(
            primary=records.Ticket.model_validate(primary),
            secondary=records.Ticket.model_validate(secondary),
            comments_merged=copied,
        )
