"""Ticket activities: each applies one workflow command in one short transaction.

They run as local activities inside the ticket workflow's update handlers. Activities are retried,
so every call is idempotent by its ``command_id`` (workflow id + update id): a retry returns the
outcome stored with the first successful attempt. Domain errors become non-retryable
``ApplicationError``s that carry the HTTP status for the API.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.commands import (
    AddCommentCommand,
    CreateTicketCommand,
    DeleteTicketCommand,
    MergeTicketCommand,
    TicketCommand,
    UpdateTicketCommand,
)
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.models import AppliedCommand
from pulse.services.ticket_merge_writes import TicketMergeWriter
from pulse.services.ticket_writes import TicketWriter

Result = TypeVar("Result", bound=BaseModel)


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
    async def create_ticket(self, command: CreateTicketCommand) -> records.Ticket:
        return await self._apply_once(
            command, records.Ticket, lambda writer: writer.create(command.payload, command.now)
        )

    @activity.defn
    async def update_ticket(self, command: UpdateTicketCommand) -> records.Ticket:
        return await self._apply_once(
            command,
            records.Ticket,
            lambda writer: writer.update(command.account_id, command.ticket_id, command.payload, command.now),
        )

    @activity.defn
    async def add_comment(self, command: AddCommentCommand) -> records.CommentResult:
        return await self._apply_once(
            command,
            records.CommentResult,
            lambda writer: writer.add_comment(command.account_id, command.ticket_id, command.payload, command.now),
        )

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
