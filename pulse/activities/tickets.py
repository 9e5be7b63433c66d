"""Ticket write activities: each applies one workflow command in one short transaction
(``pulse.services.ticket_engine``). They run as local activities of the ticket's own workflow,
the one writer of its row.

Activities are retried, so each is idempotent by its ``command_id``: a retry answers the outcome
stored with the first successful attempt. Domain errors become non-retryable ``ApplicationError``s
that carry the HTTP status for the API; data the database refuses fails at once.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from sqlalchemy.exc import DataError, IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pulse.db import SessionFactory
from pulse.domain.commands import (
    AttachmentCommand,
    CommentCommand,
    CreateCommand,
    DeleteAttachmentCommand,
    DeleteCommand,
    DueCommand,
    LoadTicketCommand,
    MergeInCommand,
    MergeIntoCommand,
    SlaPauseCommand,
    TicketCommand,
    TicketWrite,
    UpdateCommand,
)
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.services.ticket_engine import AlreadyApplied, TicketEngine

Command = TypeVar("Command", bound=TicketCommand)


class TicketActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def _once(self, command: Command, write: Callable[[TicketEngine, Command], Awaitable[TicketWrite]]) -> TicketWrite:
        try:
            async with self.sessions() as session, session.begin():
                try:
                    return await write(TicketEngine(session), command)
                except AlreadyApplied as applied:
                    return applied.outcome.model_copy(update={"replayed": True})
        except DomainError as error:
            raise to_application_error(error) from None
        except (DataError, IntegrityError) as error:
            # The database refused the data itself: a retry cannot succeed, so fail at once.
            raise ApplicationError(f"the database refused the change: {error.orig}", type="data_error",
                                   non_retryable=True) from None

    @activity.defn
    async def create_ticket(self, command: CreateCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.create)

    @activity.defn
    async def update_ticket(self, command: UpdateCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.update)

    @activity.defn
    async def add_comment(self, command: CommentCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.comment)

    @activity.defn
    async def add_attachment(self, command: AttachmentCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.add_attachment)

    @activity.defn
    async def delete_attachment(self, command: DeleteAttachmentCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.delete_attachment)

    @activity.defn
    async def delete_ticket(self, command: DeleteCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.delete)

    @activity.defn
    async def pause_or_resume_sla(self, command: SlaPauseCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.pause_or_resume)

    @activity.defn
    async def act_on_due(self, command: DueCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.act_on_due)

    @activity.defn
    async def merge_into(self, command: MergeIntoCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.merge_into)

    @activity.defn
    async def merge_in(self, command: MergeInCommand) -> TicketWrite:
        return await self._once(command, TicketEngine.merge_in)

    @activity.defn
    async def load_ticket(self, command: LoadTicketCommand) -> TicketWrite:
        try:
            async with self.sessions() as session, session.begin():
                return await TicketEngine(session).load(command)
        except DomainError as error:
            raise to_application_error(error) from None

    def all(self) -> list[Callable[..., Any]]:
        return [self.create_ticket, self.update_ticket, self.add_comment, self.delete_ticket, self.pause_or_resume_sla,
                self.act_on_due, self.merge_into, self.merge_in, self.load_ticket, self.add_attachment,
                self.delete_attachment]
