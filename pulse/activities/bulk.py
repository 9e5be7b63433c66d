"""Activities of ``BulkOperationWorkflow``: mark it running, apply one batch of items (bounded
concurrency, a heartbeat per item and every few seconds), mark it done. Each item's outcome is
written by the batch as it completes, so progress is visible while the operation runs and a
retried batch skips what is done (see ``pulse.services.bulk``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Callable

from temporalio import activity
from temporalio.client import Client

from pulse.activities.heartbeat import heartbeating
from pulse.db import SessionFactory
from pulse.domain.bulk import (
    BulkBatch,
    BulkBatchResult,
    BulkSpec,
    BulkStatus,
    BulkSummary,
    ItemStatus,
)
from pulse.domain.bulk import BulkOperationKind, ItemOutcome, update_id_for
from pulse.domain.changes import Actor, TagEdit, TicketChanges
from pulse.domain.commands import DeleteTicketInput, UpdateTicketInput
from pulse.domain.errors import DomainError
from pulse.domain.tickets import TicketStatus
from pulse.gateway import NoRunningWorkflow, TicketGateway
from pulse.repositories.bulk import BulkOperationRepository
from pulse.repositories.ticket_store import TicketStore

HEARTBEAT_EVERY_SECONDS = 5


class BulkActivities:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.applier = BulkItemApplier(sessions, TicketGateway(temporal, task_queue))

    @activity.defn
    async def start_bulk_operation(self, bulk_operation_id: int) -> None:
        async with self.sessions() as session, session.begin():
            await BulkOperationRepository(session).set_status(bulk_operation_id, BulkStatus.RUNNING.value, started=True)

    @activity.defn
    async def apply_bulk_batch(self, batch: BulkBatch) -> BulkBatchResult:
        """Apply the batch's pending items, ``batch.in_flight`` at a time; record each outcome once."""
        async with self.sessions() as session:
            repository = BulkOperationRepository(session)
            bulk = await repository.by_id(batch.bulk_operation_id)
            if bulk is None:
                return BulkBatchResult()
            spec = BulkSpec(id=bulk.id, account_id=bulk.account_id, created_by=bulk.created_by,
                            operation=bulk.operation, changes=bulk.changes)
            items = await repository.pending_items(bulk.id, batch.first_position, batch.end_position)
        result = BulkBatchResult(already_done=(batch.end_position - batch.first_position) - len(items))
        slots = asyncio.Semaphore(max(1, batch.in_flight))

        async def one(position: int, ticket_id: int) -> None:
            async with slots:
                outcome = await self.applier.apply(spec, ticket_id)
                async with self.sessions() as session, session.begin():
                    recorded = await BulkOperationRepository(session).record(spec.id, position, outcome)
                if recorded and outcome.status == ItemStatus.SUCCEEDED:
                    result.succeeded += 1
                elif recorded:
                    result.failed += 1
                activity.heartbeat(position)

        async with heartbeating(HEARTBEAT_EVERY_SECONDS):
            async with asyncio.TaskGroup() as group:  # an infrastructure error fails (and retries) the batch
                for position, ticket_id in items:
                    group.create_task(one(position, ticket_id))
        return result

    @activity.defn
    async def finish_bulk_operation(self, bulk_operation_id: int) -> BulkSummary:
        async with self.sessions() as session, session.begin():
            repository = BulkOperationRepository(session)
            await repository.set_status(bulk_operation_id, BulkStatus.COMPLETED.value, finished=True)
            counts = await repository.counts(bulk_operation_id)
        return BulkSummary(total=sum(counts.values()), succeeded=counts.get(ItemStatus.SUCCEEDED.value, 0),
                           failed=counts.get(ItemStatus.FAILED.value, 0))

    def all(self) -> list[Callable[..., Any]]:
        return [self.start_bulk_operation, self.apply_bulk_batch, self.finish_bulk_operation]


def bulk_command_id(bulk_operation_id: int, ticket_id: int) -> str:
    """The write command id of one bulk item: applied once, whatever the retries."""
    return f"bulk/{bulk_operation_id}/{ticket_id}"


class BulkItemApplier:
    """Applies one item as a command to the ticket's own workflow (through the gateway), so that
    validation, rules and the SLA clock behave exactly as for a single PATCH or DELETE.

    - an item whose outcome is recorded is never sent again (batches reload only pending items);
    - an item in flight when a worker died is sent again with the same update id and command id:
      Temporal answers an update id once per run, and the write is in ``applied_commands`` once it
      took effect — checked first, which also covers a ticket whose workflow ended since (closed
      or deleted by this very item);
    - a closed ticket's delete goes to a run that loads the ticket (``resume``)."""

    def __init__(self, sessions: SessionFactory, gateway: TicketGateway) -> None:
        self.sessions = sessions
        self.gateway = gateway

    async def _look_up(self, account_id: int, ticket_id: int, command_id: str) -> tuple[bool, Any]:
        """Whether the item's command took effect already, and the live ticket (2 queries, 1 session)."""
        async with self.sessions() as session:
            if await BulkOperationRepository(session).applied(command_id):
                return True, None
            ticket = await TicketStore(session).read(account_id, ticket_id)
            return False, ticket if ticket is None or ticket.deleted_at is None else None

    async def apply(self, spec: BulkSpec, ticket_id: int) -> ItemOutcome:
        """The item's outcome; raises only for infrastructure failures (the batch is retried)."""
        command_id = bulk_command_id(spec.id, ticket_id)
        update_id = update_id_for(spec.id, ticket_id)
        applied, ticket = await self._look_up(spec.account_id, ticket_id, command_id)
        if applied:
            return ItemOutcome.success()  # an earlier attempt applied it
        if ticket is None:
            return ItemOutcome.failure("not_found", f"ticket {ticket_id} not found")
        actor = Actor(kind="user", user_id=spec.created_by)
        closed = ticket.status == TicketStatus.CLOSED
        try:
            if spec.operation == BulkOperationKind.DELETE:
                await self._delete(spec.account_id, ticket_id, DeleteTicketInput(actor=actor, command_id=command_id),
                                   update_id, resume=closed)
            else:
                if closed:
                    return ItemOutcome.failure("ticket_closed", "the ticket is closed; closed tickets are read-only")
                tags = list(spec.changes.get("tags", []))
                argument = UpdateTicketInput(
                    actor=actor, command_id=command_id,
                    changes=TicketChanges.model_validate(spec.changes if spec.operation == BulkOperationKind.UPDATE else {}),
                    tags=TagEdit(add=tags if spec.operation == BulkOperationKind.ADD_TAGS else [],
                                 remove=tags if spec.operation == BulkOperationKind.REMOVE_TAGS else []),
                )
                try:
                    await self.gateway.update(spec.account_id, ticket_id, argument, update_id=update_id)
                except NoRunningWorkflow:  # ended meanwhile (closed or deleted), maybe by this very item
                    applied, current = await self._look_up(spec.account_id, ticket_id, command_id)
                    if applied:
                        return ItemOutcome.success()
                    if current is None:
                        return ItemOutcome.failure("not_found", f"ticket {ticket_id} not found")
                    await self.gateway.update(spec.account_id, ticket_id, argument, update_id=update_id, resume=True)
            return ItemOutcome.success()
        except DomainError as error:
            if error.status >= 500:
                raise
            return ItemOutcome.failure(error.code, error.message)

    async def _delete(self, account_id: int, ticket_id: int, command: DeleteTicketInput, update_id: str, *,
                      resume: bool) -> None:
        try:
            await self.gateway.delete(account_id, ticket_id, command, update_id=update_id, resume=resume)
        except NoRunningWorkflow:
            await self.gateway.delete(account_id, ticket_id, command, update_id=update_id, resume=True)
