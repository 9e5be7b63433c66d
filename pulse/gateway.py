"""The one way commands reach a ticket: the API, bulk operations, merges (and later the Maverick
sync) send them here, typed, and get the committed outcome or a ``DomainError``.

What it does for every caller:

- **Per-ticket gating**: at most ``MAX_IN_FLIGHT_UPDATES_PER_TICKET`` updates per ticket are in
  flight from this process. Staying under Temporal's per-workflow limit matters: an update the
  server refuses for being over it also drops the workflow's cached state, which aborts the
  updates already admitted (50 concurrent writers to one ticket livelocked without the gate).
- **Retries**: an update refused as busy (RESOURCE_EXHAUSTED) or aborted (UNAVAILABLE) was not
  applied; it is sent again with the same update id, with jittered backoff, for up to
  ``BUSY_TICKET_PATIENCE_SECONDS``.
- **Error mapping**: a failed update carries the domain error (status, code, details) raised by
  the validator or the activity; anything else is a 503 (the engine could not be reached) or a
  logged 500 without internals.
- **A ticket without a running workflow** (closed, or its workflow lost): with ``resume`` the
  command is sent with a start (update-with-start) of a run that loads the ticket first, takes
  the command, and ends again if the ticket is closed.

Workflows are addressed by name, so this module imports no workflow code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from pulse.domain import records
from pulse.domain.attachments import AttachmentResult
from pulse.domain.commands import (
    AddAttachmentInput,
    AddCommentInput,
    CreateTicketInput,
    DeleteAttachmentInput,
    DeleteTicketInput,
    MergeIntoInput,
    MergeTicketsInput,
    PauseSlaInput,
    ResumeSlaInput,
    RulesChanged,
    TicketWorkflowInput,
    UpdateTicketInput,
)
from pulse.domain.errors import DomainError
from pulse.domain.tickets import TicketStatus, workflow_id_for
from pulse.failures import from_application_error
from pulse import search_attributes as sa

log = logging.getLogger("pulse.gateway")

TICKET_WORKFLOW = "TicketWorkflow"
BUSY_TICKET_PATIENCE_SECONDS = 30.0
# A server that cannot be reached at all (connection refused, transport errors) is retried this
# long: a restarting Temporal is a 503 within seconds, not after the busy ticket's patience.
UNREACHABLE_PATIENCE_SECONDS = 4.0
# How long a command may take before the caller gets a 503 (the command may still complete; its
# retry with the same key or command id is answered from its outcome). A merge walks its secondaries.
COMMAND_DEADLINE_SECONDS = 45.0
MERGE_DEADLINE_SECONDS = 600.0
MAX_IN_FLIGHT_UPDATES_PER_TICKET = 8
_RETRYABLE_UPDATE_STATUSES = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE)

Result = TypeVar("Result")


class TemporalUnavailable(DomainError):
    status, code = 503, "unavailable"


class NoRunningWorkflow(Exception):
    """The ticket has no running workflow (closed, deleted, another account's, or lost)."""


async def resuming_when_needed(closed: bool, send: Callable[[bool], Awaitable[Result]]) -> Result:
    """Send a command to a ticket already looked up: ``send(resume)`` with ``resume`` when its row
    says closed (a run that loads the ticket takes it), and again with it when an open ticket's
    workflow turns out to be lost."""
    try:
        return await send(closed)
    except NoRunningWorkflow:
        return await send(True)


class _TicketGates:
    """One semaphore per ticket workflow with waiting or running updates (dropped when idle)."""

    def __init__(self) -> None:
        self._gates: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def admit(self, workflow_id: str) -> AsyncIterator[None]:
        gate, users = self._gates.get(workflow_id) or (asyncio.Semaphore(MAX_IN_FLIGHT_UPDATES_PER_TICKET), 0)
        self._gates[workflow_id] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._gates[workflow_id]
            if users == 1:
                del self._gates[workflow_id]
            else:
                self._gates[workflow_id] = (gate, users - 1)


_ticket_gates = _TicketGates()


async def _when_admitted(call: Callable[[], Awaitable[Result]]) -> Result:
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay = 0.02
    while True:
        try:
            return await call()
        except RPCError as error:
            patience = UNREACHABLE_PATIENCE_SECONDS if _unreachable(error) else BUSY_TICKET_PATIENCE_SECONDS
            if error.status not in _RETRYABLE_UPDATE_STATUSES or loop.time() >= started + patience:
                raise
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.5)


def _unreachable(error: RPCError) -> bool:
    """The server was not reached (as opposed to an update it aborted, which is worth waiting for)."""
    text = str(error).lower()
    return error.status == RPCStatusCode.UNAVAILABLE and ("connect" in text or "transport" in text)


def domain_error(error: Exception) -> DomainError:
    """The domain error behind a failed update, or a 503 when Temporal could not be reached."""
    cause = getattr(error, "cause", None)
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, ApplicationError):
        found = from_application_error(cause)
        if found is not None:
            return found
        # Not one of our domain errors: its text (SQL, stack details) is for the log, not the client.
        log.error("ticket command failed: %s: %s", cause.type, cause.message)
        if cause.type == "write_failed":
            return TemporalUnavailable("the change could not be stored right now; retry shortly")
        return DomainError("the change could not be applied; it has been logged", code="internal_error", status=500)
    return TemporalUnavailable(f"the ticket engine did not answer: {error}")


class TicketGateway:
    def __init__(self, temporal: Client, task_queue: str) -> None:
        self.temporal = temporal
        self.task_queue = task_queue

    # -- typed commands ------------------------------------------------------------------------

    async def create(self, input: CreateTicketInput) -> records.Ticket:
        """Start the ticket's workflow with its create (update-with-start, one round trip). A
        repeated create of the same ticket id answers the stored ticket: the workflow's create is
        idempotent by ticket id, so a retry after a lost answer never makes a second ticket."""
        new = input.ticket
        start = WithStartWorkflowOperation(
            TICKET_WORKFLOW,
            TicketWorkflowInput(account_id=input.account_id, ticket_id=input.ticket_id),
            id=workflow_id_for(input.account_id, input.ticket_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(sa.at_start(sa.facts_at_create(
                input.number, new.status or TicketStatus.OPEN, new.priority or "medium", new.assigned_to_team_id))),
            static_summary=f"PULSE-{input.number}: {new.subject[:200]}",
        )
        try:
            return await self.temporal.execute_update_with_start_workflow(
                "create", input, start_workflow_operation=start, id="create", result_type=records.Ticket)
        except (WorkflowUpdateFailedError, RPCError) as error:
            raise domain_error(error) from None

    async def update(self, account_id: int, ticket_id: int, input: UpdateTicketInput, *,
                     resume: bool = False, update_id: str | None = None) -> records.Ticket:
        return await self._send(account_id, ticket_id, "update", input, records.Ticket, resume=resume,
                                update_id=update_id)

    async def comment(self, account_id: int, ticket_id: int, input: AddCommentInput, *,
                      resume: bool = False) -> records.CommentResult:
        return await self._send(account_id, ticket_id, "add_comment", input, records.CommentResult, resume=resume)

    async def add_attachment(self, account_id: int, ticket_id: int, input: AddAttachmentInput, *,
                             resume: bool = False) -> AttachmentResult:
        return await self._send(account_id, ticket_id, "add_attachment", input, AttachmentResult, resume=resume,
                                update_id=input.command_id)

    async def delete_attachment(self, account_id: int, ticket_id: int, input: DeleteAttachmentInput, *,
                                resume: bool = False) -> AttachmentResult:
        return await self._send(account_id, ticket_id, "delete_attachment", input, AttachmentResult, resume=resume,
                                update_id=input.command_id)

    async def delete(self, account_id: int, ticket_id: int, input: DeleteTicketInput, *,
                     resume: bool = False, update_id: str | None = None) -> records.Ticket:
        return await self._send(account_id, ticket_id, "delete", input, records.Ticket, resume=resume,
                                update_id=update_id)

    async def pause_sla(self, account_id: int, ticket_id: int, input: PauseSlaInput, *,
                        resume: bool = False) -> records.Ticket:
        return await self._send(account_id, ticket_id, "pause_sla", input, records.Ticket, resume=resume)

    async def resume_sla(self, account_id: int, ticket_id: int, input: ResumeSlaInput, *,
                         resume: bool = False) -> records.Ticket:
        return await self._send(account_id, ticket_id, "resume_sla", input, records.Ticket, resume=resume)

    async def merge(self, account_id: int, ticket_id: int, input: MergeTicketsInput, *,
                    resume: bool = False) -> records.MergeResult:
        return await self._send(account_id, ticket_id, "merge", input, records.MergeResult, resume=resume,
                                deadline=MERGE_DEADLINE_SECONDS)

    async def merge_into(self, account_id: int, ticket_id: int, input: MergeIntoInput, *,
                         resume: bool = False) -> records.Ticket:
        return await self._send(account_id, ticket_id, "merge_into", input, records.Ticket, resume=resume,
                                update_id=input.command_id)

    async def rules_changed(self, account_id: int, ticket_id: int, generation: int) -> bool:
        """Signal the ticket's running workflow; False when it has none."""
        handle = self.temporal.get_workflow_handle(workflow_id_for(account_id, ticket_id))
        try:
            await handle.signal("rules_changed", RulesChanged(generation=generation))
            return True
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise

    # -- sending -------------------------------------------------------------------------------

    async def _send(self, account_id: int, ticket_id: int, name: str, input: Any, result_type: type[Result], *,
                    resume: bool, update_id: str | None = None,
                    deadline: float = COMMAND_DEADLINE_SECONDS) -> Result:
        """One update of the ticket's workflow. Without ``resume``: ``NoRunningWorkflow`` when it
        has none running. With it: sent with a start of a run that loads the ticket first."""
        workflow_id = workflow_id_for(account_id, ticket_id)
        update_id = update_id or f"{name}-{uuid.uuid4()}"  # one id for every retry
        try:
            async with asyncio.timeout(deadline), _ticket_gates.admit(workflow_id):
                if resume:
                    return await _when_admitted(lambda: self._send_with_start(account_id, ticket_id, name, input,
                                                                              result_type, update_id))
                handle = self.temporal.get_workflow_handle(workflow_id)
                return await _when_admitted(lambda: handle.execute_update(name, input, id=update_id,
                                                                          result_type=result_type))
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise TemporalUnavailable("the ticket did not answer in time; retry shortly") \
                from None
        except WorkflowUpdateFailedError as error:
            raise domain_error(error) from None
        except RPCError as error:
            if error.status in _RETRYABLE_UPDATE_STATUSES:
                raise TemporalUnavailable("the ticket is receiving too many changes at once; retry shortly") from None
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NoRunningWorkflow() from None
            raise domain_error(error) from None

    async def _send_with_start(self, account_id: int, ticket_id: int, name: str, input: Any,
                               result_type: type[Result], update_id: str) -> Result:
        start = WithStartWorkflowOperation(
            TICKET_WORKFLOW,
            TicketWorkflowInput(account_id=account_id, ticket_id=ticket_id, resume=True),
            id=workflow_id_for(account_id, ticket_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"ticket {ticket_id} (resumed for {name})",
        )
        return await self.temporal.execute_update_with_start_workflow(
            name, input, start_workflow_operation=start, id=update_id, result_type=result_type)
