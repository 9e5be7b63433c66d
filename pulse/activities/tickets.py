"""Ticket activities: each applies one workflow command in one short transaction.

They run as local activities inside the ticket workflow's update handlers. Activities are retried,
so every call is idempotent by its ``command_id`` (workflow id + update id): a retry returns the
outcome stored with the first successful attempt. Domain errors become non-retryable
``ApplicationError``s that carry the HTTP status for the API.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.commands import (
    Actor,
    AddCommentCommand,
    CreateTicketCommand,
    DeleteTicketCommand,
    MergeTicketCommand,
    TicketCommand,
    TicketWrite,
    UpdateTicketCommand,
)
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.models import AppliedCommand
from pulse.services.sla import follow_change
from pulse.services.ticket_merge_writes import TicketMergeWriter
from pulse.services.ticket_writes import TicketWriter

Result = TypeVar("Result", bound=BaseModel)
log = logging.getLogger("pulse.activities")


async def _following_sla(writer: TicketWriter, command: CreateTicketCommand | UpdateTicketCommand | AddCommentCommand,
                         actor: Actor, ticket: records.Ticket, comment: records.Comment | None = None) -> TicketWrite:
    """The written ticket, after the SLA clock followed the change in the same transaction (when
    the command carries the clock): one local activity and one commit per write. If moving the
    clock fails, the change stands without it (as the two-activity design behaved) and the clock
    catches up at the ticket's next change; a database outage fails the whole write, which retries."""
    if command.sla is None:
        return TicketWrite(ticket=ticket, comment=comment)
    try:
        async with writer.session.begin_nested():  # a savepoint: the clock cannot undo the change
            synced = await follow_change(writer.session, command.sla.command_after(command, actor, ticket))
    except Exception:  # noqa: BLE001 - e.g. a policy row that no longer validates
        log.exception("SLA clock of ticket %s not moved (the next change catches up)", command.ticket_id)
        return TicketWrite(ticket=ticket, comment=comment)
    return TicketWrite(ticket=synced.ticket or ticket, comment=comment, sla=synced.model_copy(update={"ticket": None}))


class TicketActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def _apply_once(
        self,
        command: TicketCommand,
        result_type: type[Result],
        apply: Callable[[TicketWriter], Awaitable[Result]],
    ) -> Result:
        try:
            async with self.sessions() as session, session.begin():
                stored = await session.scalar(
                    select(AppliedCommand.result).where(AppliedCommand.command_id == command.command_id)
                )
                if stored is not None:
                    if result_type is TicketWrite:  # stored by earlier code as a bare ticket, too
                        return TicketWrite.from_any(stored)  # type: ignore[return-value]
                    return result_type.model_validate(stored)
                result = await apply(TicketWriter(session))
                session.add(
                    AppliedCommand(
                        command_id=command.command_id,
                        ticket_id=command.ticket_id,
                        result=result.model_dump(mode="json"),
                    )
                )
                return result
        except DomainError as error:
            raise to_application_error(error) from None
        except (DataError, IntegrityError) as error:
            # The database refused the data itself: a retry cannot succeed, so fail at once.
            raise ApplicationError(f"the database refused the change: {error.orig}", type="data_error",
                                   non_retryable=True) from None

    @activity.defn
    async def create_ticket(self, command: CreateTicketCommand) -> TicketWrite:
        async def create(writer: TicketWriter) -> TicketWrite:
            ticket = await writer.create(command.payload, command.now)
            return await _following_sla(writer, command, command.payload.actor, ticket)

        return await self._apply_once(command, TicketWrite, create)

    @activity.defn
    async def update_ticket(self, command: UpdateTicketCommand) -> TicketWrite:
        async def update(writer: TicketWriter) -> TicketWrite:
            ticket = await writer.update(command.account_id, command.ticket_id, command.payload, command.now)
            return await _following_sla(writer, command, command.payload.actor, ticket)

        return await self._apply_once(command, TicketWrite, update)

    @activity.defn
    async def add_comment(self, command: AddCommentCommand) -> TicketWrite:
        async def comment(writer: TicketWriter) -> TicketWrite:
            result = await writer.add_comment(command.account_id, command.ticket_id, command.payload, command.now)
            return await _following_sla(writer, command, command.payload.actor, result.ticket, result.comment)

        return await self._apply_once(command, TicketWrite, comment)

    @activity.defn
    async def delete_ticket(self, command: DeleteTicketCommand) -> records.Ticket:
        return await self._apply_once(
            command,
            records.Ticket,
            lambda writer: writer.delete(command.account_id, command.ticket_id, command.payload, command.now),
        )

    @activity.defn
    async def merge_ticket(self, command: MergeTicketCommand) -> records.MergeOutcome:
        """One secondary ticket merged into the primary (``command.ticket_id``), one transaction."""
        return await self._apply_once(
            command,
            records.MergeOutcome,
            lambda writer: TicketMergeWriter(writer.session).merge(
                command.account_id, command.ticket_id, command.payload, command.now
            ),
        )

    def all(self) -> list[Callable[..., Any]]:
        return [self.create_ticket, self.update_ticket, self.add_comment, self.delete_ticket, self.merge_ticket]
