"""The API's side of tickets: reads from PostgreSQL, writes as updates to the ticket's workflow.

Cost per call: a read is one indexed lookup (+ one count for lists beyond one page). A write is
one Temporal update round trip, whose handler runs one local activity = one database transaction,
after one ticket lookup (to resolve ``PULSE-n``, closed tickets and the account); a PATCH by
numeric id skips the lookup while the ticket's workflow runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
import logging
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.commands import (
    Actor,
    AddCommentInput,
    CreateTicketInput,
    DeleteTicketInput,
    PauseSlaInput,
    ResumeSlaInput,
    TicketWorkflowInput,
    UpdateTicketInput,
)
from pulse.domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed, VersionConflict
from pulse.domain.ids import MAX_INT, is_storable_id
from pulse.domain.ticket_query import TicketQuery
from pulse.domain.tickets import (
    Permission,
    Priority,
    TicketStatus,
    check_transition,
    parse_ticket_number,
    workflow_id_for,
)
from pulse.failures import from_application_error
from pulse.models import IdempotencyKey, Ticket, TicketCategory, User
from pulse.repositories.reference import ReferenceRepository
from pulse.repositories.ticket_lists import TicketLists
from pulse.repositories.tickets import CommentRepository, TicketRepository, TimelineRepository
from pulse.services.auth import Principal
from pulse.services.ticket_writes import TicketWriter
from pulse.workflows import search_attributes as sa
from pulse.workflows.ticket import TicketWorkflow


log = logging.getLogger("pulse.tickets")


class TemporalUnavailable(DomainError):
    status, code = 503, "unavailable"


class _WorkflowEnded(Exception):
    """The ticket has no running workflow (closed, deleted, or not this account's)."""


Result = TypeVar("Result")

# Temporal admits a bounded number of in-flight updates per workflow (10 by default): a busier
# ticket's extra writes are refused with RESOURCE_EXHAUSTED, and an admitted update that was not
# yet accepted is aborted (UNAVAILABLE) when the server drops the workflow's cached state. Neither was
# applied, and a retry carries the same update id (so Temporal and the activity's command id
# deduplicate it): such writes are sent again, with jittered exponential backoff, for up to this long.
BUSY_TICKET_PATIENCE_SECONDS = 30.0
_RETRYABLE_UPDATE_STATUSES = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE)


# At most this many updates per ticket are in flight from this process. Staying under the server's
# limit matters beyond the 503s: every update the server refuses for being over it also drops
# the workflow's cached state, which aborts the updates already admitted; 50 concurrent writers
# to one ticket then livelock (measured: 2 of 50 PATCHes done after 30 s; with the gate all 50).
MAX_IN_FLIGHT_UPDATES_PER_TICKET = 8


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
    deadline = loop.time() + BUSY_TICKET_PATIENCE_SECONDS
    delay = 0.02
    while True:
        try:
            return await call()
        except RPCError as error:
            if error.status not in _RETRYABLE_UPDATE_STATUSES or loop.time() >= deadline:
                raise
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.5)


def actor_of(principal: Principal) -> Actor:
    return Actor(kind="user", user_id=principal.user_id)


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _domain_error(error: Exception) -> DomainError:
    """The domain error behind a failed update, or a 503 when Temporal could not be reached."""
    cause = getattr(error, "cause", None)
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, ApplicationError):
        found = from_application_error(cause)
        if found is not None:
            return found
        # Not one of our domain errors: an unexpected failure whose text (SQL, stack details) is
        # for the log, not for the client.
        log.error("ticket write failed: %s: %s", cause.type, cause.message)
        if cause.type == "write_failed":
            return TemporalUnavailable("the change could not be stored right now; retry shortly")
        return DomainError("the change could not be applied; it has been logged", code="internal_error", status=500)
    return TemporalUnavailable(f"the ticket engine did not answer: {error}")


@dataclass
class TicketList:
    tickets: list[records.Ticket]
    total: int
    total_is_estimate: bool = False
    snippets: dict[int, str] = field(default_factory=dict)


MAX_MERGE_HOPS = 10


class TicketService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.task_queue = task_queue

    # -- reads ----------------------------------------------------------------------------------

    async def resolve(self, account_id: int, reference: str) -> Ticket:
        """A ticket by numeric id or ``PULSE-n``, within the account (404 otherwise)."""
        async with self.sessions() as session:
            repository = TicketRepository(session)
            number = parse_ticket_number(reference)
            ticket = None
            if number is not None:
                if number <= MAX_INT:
                    ticket = await repository.get_by_number(account_id, number)
            elif reference.isdigit() and is_storable_id(int(reference)):
                ticket = await repository.get(account_id, int(reference))
            if ticket is None:
                raise NotFound(f"ticket {reference} not found")
            return ticket

    async def get(self, account_id: int, reference: str) -> records.Ticket:
        return records.Ticket.model_validate(await self.resolve(account_id, reference))

    async def list(self, account_id: int, query: TicketQuery) -> tuple[list[records.Ticket], int]:
        page = await self.list_page(account_id, query)
        return page.tickets, page.total

    async def list_page(self, account_id: int, query: TicketQuery, *, include_internal: bool = False) -> TicketList:
        """A page of tickets with its total (an estimate above 10,000, flagged) and, for a search,
        a snippet per ticket. ``include_internal``: internal notes are searched (writeSupport)."""
        async with self.sessions() as session:
            page = await TicketLists(session).page(account_id, query, include_internal=include_internal)
            return TicketList(
                tickets=[records.Ticket.model_validate(row) for row in page.tickets],
                total=page.total,
                total_is_estimate=page.total_is_estimate,
                snippets=page.snippets,
            )

    async def comments(
        self, principal: Principal, reference: str, *, include_internal: bool, page: int, page_size: int
    ) -> tuple[list[records.Comment], int]:
        ticket = await self.resolve(principal.account_id, reference)
        include_internal = include_internal and principal.has(Permission.WRITE_SUPPORT)
        async with self.sessions() as session:
            rows, total = await CommentRepository(session).list(
                ticket.id, include_internal=include_internal, page=page, page_size=page_size
            )
            return [records.Comment.model_validate(row) for row in rows], total

    async def timeline(
        self, account_id: int, reference: str, *, page: int, page_size: int
    ) -> tuple[list[records.TimelineEntry], int]:
        ticket = await self.resolve(account_id, reference)
        async with self.sessions() as session:
            rows, total = await TimelineRepository(session).list(ticket.id, page=page, page_size=page_size)
            return [records.TimelineEntry.model_validate(row) for row in rows], total

    # -- writes ---------------------------------------------------------------------------------

    async def _resolve_category(self, account_id: int, fields: dict[str, Any]) -> None:
        """``category`` (the API guide's alias) names a category by id or by name."""
        if "category" not in fields:
            return
        category = fields.pop("category")
        if "category_id" in fields:
            raise ValidationFailed("send category or categoryId, not both",
                                   details=[{"field": "category", "message": "duplicate of categoryId"}])
        if category is None or isinstance(category, int):
            fields["category_id"] = category
            return
        async with self.sessions() as session:
            found = await ReferenceRepository(session, TicketCategory).find_by_name(account_id, category)
        if found is None:
            raise ValidationFailed("unknown category",
                                   details=[{"field": "category", "message": f"no category named {category!r}"}])
        fields["category_id"] = found.id

    async def create(self, principal: Principal, fields: dict[str, Any], idempotency_key: str | None) -> tuple[records.Ticket, bool]:
        """Create a ticket (update-with-start). Returns the ticket and whether it was created now
        (False when an ``Idempotency-Key`` replays an earlier create)."""
        account_id = principal.account_id
        await self._resolve_category(account_id, fields)
        request_hash = _request_hash(fields)
        async with self.sessions() as session, session.begin():
            ticket_id = await TicketRepository(session).next_id()
            if idempotency_key:
                inserted = await session.scalar(
                    insert(IdempotencyKey)
                    .values(account_id=account_id, scope="tickets.create", key=idempotency_key,
                            resource_id=ticket_id, request_hash=request_hash)
                    .on_conflict_do_nothing()
                    .returning(IdempotencyKey.resource_id)
                )
                if inserted is None:
                    first = await session.scalar(
                        select(IdempotencyKey).where(
                            IdempotencyKey.account_id == account_id,
                            IdempotencyKey.scope == "tickets.create",
                            IdempotencyKey.key == idempotency_key,
                        )
                    )
                    assert first is not None and first.resource_id is not None
                    ticket_id = first.resource_id
                    if (datetime.now(timezone.utc) - first.created_at).total_seconds() < 24 * 3600:
                        return await self._replay_create(principal, ticket_id, fields), False
        try:
            ticket = await self._start(principal, ticket_id, fields)
        except DomainError:
            if idempotency_key:
                async with self.sessions() as session, session.begin():
                    await session.execute(
                        delete(IdempotencyKey).where(
                            IdempotencyKey.account_id == account_id,
                            IdempotencyKey.scope == "tickets.create",
                            IdempotencyKey.key == idempotency_key,
                        )
                    )
            raise
        return ticket, True

    async def _replay_create(self, principal: Principal, ticket_id: int, fields: dict[str, Any]) -> records.Ticket:
        async with self.sessions() as session:
            existing = await session.get(Ticket, ticket_id)
        if existing is not None:
            return records.Ticket.model_validate(existing)
        # The first request is still in flight: the same update id makes Temporal answer with its result.
        return await self._start(principal, ticket_id, fields)

    async def _start(self, principal: Principal, ticket_id: int, fields: dict[str, Any]) -> records.Ticket:
        account_id = principal.account_id
        workflow_input = TicketWorkflowInput(account_id=account_id, ticket_id=ticket_id)
        priority = fields.get("priority") or Priority.MEDIUM
        status = fields.get("status") or TicketStatus.OPEN
        start = WithStartWorkflowOperation(
            TicketWorkflow.run,
            workflow_input,
            id=workflow_id_for(account_id, ticket_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TICKET_STATUS, TicketStatus(status).value),
                    SearchAttributePair(sa.TICKET_PRIORITY, Priority(priority).value),
                ]
            ),
            static_summary=f"Ticket {ticket_id}: {fields.get('subject', '')[:200]}",
        )
        try:
            return await self.temporal.execute_update_with_start_workflow(
                TicketWorkflow.create,
                CreateTicketInput(account_id=account_id, ticket_id=ticket_id, actor=actor_of(principal), fields=fields),
                start_workflow_operation=start,
                id="create",
            )
        except WorkflowUpdateFailedError as error:
            raise _domain_error(error) from None
        except RPCError as error:
            if error.status == RPCStatusCode.ALREADY_EXISTS:
                async with self.sessions() as session:
                    existing = await session.get(Ticket, ticket_id)
                if existing is not None:
                    return records.Ticket.model_validate(existing)
            raise _domain_error(error) from None

    async def _run_update(self, ticket: Ticket, update: Any, argument: Any, *, update_id: str | None = None) -> Any:
        try:
            return await self._send_update(ticket.account_id, ticket.id, update, argument, update_id=update_id)
        except _WorkflowEnded:
            # The ticket was closed or deleted meanwhile.
            current = await self.resolve(ticket.account_id, str(ticket.id))
            if current.status == TicketStatus.CLOSED.value:
                raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed") from None
            raise NotFound(f"ticket {ticket.id} not found") from None

    async def _send_update(self, account_id: int, ticket_id: int, update: Any, argument: Any, *,
                           update_id: str | None = None) -> Any:
        """One update of the ticket's workflow (``_WorkflowEnded`` when it has none running)."""
        workflow_id = workflow_id_for(account_id, ticket_id)
        handle = self.temporal.get_workflow_handle(workflow_id)
        try:
            update_id = update_id or f"{update.__name__}-{uuid.uuid4()}"  # one id for every retry
            async with _ticket_gates.admit(workflow_id):
                return await _when_admitted(lambda: handle.execute_update(update, argument, id=update_id))
        except WorkflowUpdateFailedError as error:
            raise _domain_error(error) from None
        except RPCError as error:
            if error.status in _RETRYABLE_UPDATE_STATUSES:
                raise TemporalUnavailable("the ticket is receiving too many changes at once; retry shortly") from None
            if error.status == RPCStatusCode.NOT_FOUND:
                raise _WorkflowEnded() from None
            raise _domain_error(error) from None

    async def update(self, principal: Principal, reference: str, changes: dict[str, Any],
                     expected_version: int | None) -> records.Ticket:
        """By numeric id the update goes straight to the workflow (its id holds the account, so
        another account's ticket has none); only when there is no running workflow (closed,
        deleted, unknown) or for ``PULSE-n`` is the ticket looked up first."""
        await self._resolve_category(principal.account_id, changes)
        command = UpdateTicketInput(actor=actor_of(principal), changes=changes, expected_version=expected_version)
        if reference.isdigit() and is_storable_id(int(reference)):
            try:
                return await self._send_update(principal.account_id, int(reference), TicketWorkflow.update, command)
            except _WorkflowEnded:
                pass
            except DomainError as error:
                if error.code != "ticket_closed":
                    raise  # closed while the workflow winds down: the closed-ticket rules below apply
        ticket = await self.resolve(principal.account_id, reference)
        if ticket.status == TicketStatus.CLOSED.value:
            return self._update_closed(ticket, changes, expected_version)
        return await self._run_update(ticket, TicketWorkflow.update, command)

    @staticmethod
    def _update_closed(ticket: Ticket, changes: dict[str, Any], expected_version: int | None) -> records.Ticket:
        """A closed ticket's workflow has ended and the ticket is read-only. Closing it again is the
        no-op that setting the current status always is (so a retried close succeeds); any other
        status is an invalid transition; any other change a ``ticket_closed`` conflict."""
        if expected_version is not None and expected_version != ticket.version:
            raise VersionConflict(
                f"ticket is at version {ticket.version}, not {expected_version}; reload and retry",
                details=[{"field": "version", "message": f"current version is {ticket.version}"}],
            )
        if changes.get("status") is not None:
            check_transition(TicketStatus.CLOSED, TicketStatus(changes["status"]))
        if set(changes) <= {"status"}:
            return records.Ticket.model_validate(ticket)
        raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")

    async def delete(self, principal: Principal, reference: str, expected_version: int | None) -> records.Ticket:
        ticket = await self.resolve(principal.account_id, reference)
        command = DeleteTicketInput(actor=actor_of(principal), expected_version=expected_version)
        if ticket.status == TicketStatus.CLOSED.value:
            # The workflow has ended with the close; a closed ticket is deleted directly.
            async with self.sessions() as session, session.begin():
                return await TicketWriter(session).delete(ticket.account_id, ticket.id, command, datetime.now(timezone.utc))
        return await self._run_update(ticket, TicketWorkflow.delete, command)

    async def _check_mentions(self, account_id: int, user_ids: list[int]) -> None:
        """Mentioned users are notified: they must be users of this account (one lookup each)."""
        if not user_ids:
            return
        async with self.sessions() as session:
            users = ReferenceRepository(session, User)
            missing = [uid for uid in dict.fromkeys(user_ids) if await users.get(account_id, uid) is None]
        if missing:
            raise ValidationFailed("unknown mentioned users", details=[
                {"field": "mentions", "message": f"no user with id {uid} in this account"} for uid in missing])

    async def add_comment(self, principal: Principal, reference: str, comment: AddCommentInput,
                          idempotency_key: str | None) -> records.Comment:
        ticket = await self.resolve(principal.account_id, reference)
        await self._check_mentions(principal.account_id, comment.mentions)
        for _ in range(MAX_MERGE_HOPS):  # a comment to a merged ticket lands on the ticket it was merged into
            if ticket.merged_into_ticket_id is None:
                break
            ticket = await self.resolve(principal.account_id, str(ticket.merged_into_ticket_id))
        if ticket.status == TicketStatus.CLOSED.value:
            if not principal.has(Permission.MANAGE_SETTINGS):
                raise Forbidden("closed tickets take comments only from manageSettings holders", code="ticket_closed")
            comment = comment.model_copy(update={"is_internal": True, "notify_customer": False})
            async with self.sessions() as session, session.begin():
                result = await TicketWriter(session).add_comment(
                    ticket.account_id, ticket.id, comment, datetime.now(timezone.utc)
                )
            return result.comment
        update_id = None
        if idempotency_key:
            update_id = "comment-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        result = await self._run_update(
            ticket, TicketWorkflow.add_comment, comment, update_id=update_id
        )
        return result.comment

    async def pause_sla(self, principal: Principal, reference: str, reason: str | None) -> records.Ticket:
        """Pause the SLA clock by hand (an update of the ticket's workflow)."""
        ticket = await self.resolve(principal.account_id, reference)
        if ticket.status == TicketStatus.CLOSED.value:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        return await self._run_update(ticket, TicketWorkflow.pause_sla,
                                      PauseSlaInput(actor=actor_of(principal), reason=reason))

    async def resume_sla(self, principal: Principal, reference: str, reason: str | None) -> records.Ticket:
        """End a manual SLA pause (a pause by status lasts until the status changes: 409)."""
        ticket = await self.resolve(principal.account_id, reference)
        if ticket.status == TicketStatus.CLOSED.value:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        return await self._run_update(ticket, TicketWorkflow.resume_sla,
                                      ResumeSlaInput(actor=actor_of(principal), reason=reason))
