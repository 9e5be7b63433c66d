"""TicketWorkflow: one long-lived workflow per ticket (``ticket-<accountId>-<ticketId>``).

Every mutation of a ticket is an update: its validator rejects invalid requests before anything
reaches history, its handler applies the change in one local activity (one database
transaction) and answers with the committed ticket. The run loop sleeps until the next instant
something is due (SLA thresholds, escalation levels, time-based rules: ``_next_due``), and
re-computes whenever a change arrives. The workflow ends when the ticket is closed or deleted.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pulse.domain import records
    from pulse.domain.commands import (
        AddCommentCommand,
        AddCommentInput,
        CreateTicketCommand,
        CreateTicketInput,
        DeleteTicketCommand,
        DeleteTicketInput,
        TicketWorkflowInput,
        TicketWorkflowState,
        UpdateTicketCommand,
        UpdateTicketInput,
    )
    from pulse.domain.errors import Conflict, DomainError, NotFound, VersionConflict
    from pulse.domain.tickets import TicketStatus, check_transition, format_ticket_number
    from pulse.failures import to_application_error
    from pulse.workflows import search_attributes as sa

DB_WRITE_TIMEOUT = timedelta(seconds=30)
DB_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=10,
)


@workflow.defn
class TicketWorkflow:
    @workflow.init
    def __init__(self, input: TicketWorkflowInput) -> None:
        self.state = input.state or TicketWorkflowState(account_id=input.account_id, ticket_id=input.ticket_id)
        self._lock = asyncio.Lock()
        self._changed = False
        self._abandoned = False

    # -- the run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: TicketWorkflowInput) -> None:
        while not self._finished():
            await workflow.wait_condition(lambda: self._changed or self._finished())
            self._changed = False
            if workflow.info().is_continue_as_new_suggested() and not self._finished():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    TicketWorkflowInput(account_id=self.state.account_id, ticket_id=self.state.ticket_id, state=self.state)
                )
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _finished(self) -> bool:
        return self._abandoned or self.state.deleted or self.state.status == TicketStatus.CLOSED

    @workflow.query
    def current_state(self) -> TicketWorkflowState:
        return self.state

    # -- create ---------------------------------------------------------------------------------

    @workflow.update
    async def create(self, input: CreateTicketInput) -> records.Ticket:
        async with self._lock:
            try:
                ticket = await self._write(
                    "create_ticket",
                    CreateTicketCommand(**self._envelope(), payload=input),
                    records.Ticket,
                    f"create ticket {self.state.ticket_id}",
                )
            except ApplicationError:
                if self.state.number is None:
                    self._abandoned = True  # nothing was stored: this run has no ticket to keep
                raise
            self._apply(ticket)
            return ticket

    # -- update ---------------------------------------------------------------------------------

    @workflow.update
    async def update(self, input: UpdateTicketInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(lambda: self._check_update(input))
            fields = ", ".join(sorted(input.changes)) or "nothing"
            ticket = await self._write(
                "update_ticket",
                UpdateTicketCommand(**self._envelope(), payload=input),
                records.Ticket,
                f"update {self._label()}: {fields}",
            )
            self._apply(ticket)
            return ticket

    @update.validator
    def validate_update(self, input: UpdateTicketInput) -> None:
        self._reject_unless(lambda: self._check_update(input))

    def _check_update(self, input: UpdateTicketInput) -> None:
        self._check_writable(input.expected_version)
        if "status" in input.changes:
            check_transition(self.state.status, TicketStatus(input.changes["status"]))

    # -- comments -------------------------------------------------------------------------------

    @workflow.update
    async def add_comment(self, input: AddCommentInput) -> records.CommentResult:
        async with self._lock:
            self._reject_unless(self._check_exists)
            kind = "internal note" if input.is_internal else f"{input.author_type.value} comment"
            result = await self._write(
                "add_comment",
                AddCommentCommand(**self._envelope(), payload=input),
                records.CommentResult,
                f"add {kind} to {self._label()}",
            )
            self._apply(result.ticket)
            return result

    @add_comment.validator
    def validate_add_comment(self, input: AddCommentInput) -> None:
        self._reject_unless(self._check_exists)

    # -- delete ---------------------------------------------------------------------------------

    @workflow.update
    async def delete(self, input: DeleteTicketInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(self._check_exists)
            ticket = await self._write(
                "delete_ticket",
                DeleteTicketCommand(**self._envelope(), payload=input),
                records.Ticket,
                f"delete {self._label()}",
            )
            self.state.deleted = True
            self._apply(ticket)
            return ticket

    @delete.validator
    def validate_delete(self, input: DeleteTicketInput) -> None:
        self._reject_unless(lambda: self._check_writable(input.expected_version, allow_closed=True))

    # -- helpers --------------------------------------------------------------------------------

    def _label(self) -> str:
        if self.state.number is None:
            return f"ticket {self.state.ticket_id}"
        return format_ticket_number(self.state.number)

    def _envelope(self) -> dict[str, Any]:
        update = workflow.current_update_info()
        update_id = update.id if update else "run"
        return {
            "command_id": f"{workflow.info().workflow_id}/{update_id}",
            "account_id": self.state.account_id,
            "ticket_id": self.state.ticket_id,
            "now": workflow.now(),
        }

    def _check_exists(self) -> None:
        if self.state.number is None or self.state.deleted:
            raise NotFound(f"ticket {self.state.ticket_id} not found")

    def _check_writable(self, expected_version: int | None, *, allow_closed: bool = False) -> None:
        self._check_exists()
        if self.state.status == TicketStatus.CLOSED and not allow_closed:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        if expected_version is not None and expected_version != self.state.version:
            raise VersionConflict(
                f"ticket is at version {self.state.version}, not {expected_version}; reload and retry",
                details=[{"field": "version", "message": f"current version is {self.state.version}"}],
            )

    @staticmethod
    def _reject_unless(check: Any) -> None:
        """Run a domain check in a validator; a failure rejects the update before history."""
        try:
            check()
        except DomainError as error:
            raise to_application_error(error) from None

    async def _write(self, activity: str, command: Any, result_type: type[Any], summary: str) -> Any:
        try:
            return await workflow.execute_local_activity(
                activity,
                command,
                result_type=result_type,
                start_to_close_timeout=DB_WRITE_TIMEOUT,
                retry_policy=DB_WRITE_RETRY,
                summary=summary,
            )
        except DomainError as error:
            raise to_application_error(error) from None
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(
                    cause.message, *cause.details, type=cause.type, non_retryable=True
                ) from None
            raise ApplicationError(f"could not store the change: {error}", type="write_failed") from None

    def _apply(self, ticket: records.Ticket) -> None:
        """Take over the committed ticket's facts and publish them as search attributes."""
        before = (self.state.status, self.state.priority, self.state.team_id, self.state.number)
        self.state.number = ticket.number
        self.state.status = ticket.status
        self.state.priority = ticket.priority
        self.state.team_id = ticket.assigned_to_team_id
        self.state.version = ticket.version
        self._changed = True
        if before != (self.state.status, self.state.priority, self.state.team_id, self.state.number):
            workflow.upsert_search_attributes(
                [
                    sa.TICKET_NUMBER.value_set(format_ticket_number(ticket.number)),
                    sa.TICKET_STATUS.value_set(ticket.status.value),
                    sa.TICKET_PRIORITY.value_set(ticket.priority.value),
                    sa.TICKET_TEAM.value_set(str(ticket.assigned_to_team_id))
                    if ticket.assigned_to_team_id is not None
                    else sa.TICKET_TEAM.value_unset(),
                ]
            )
