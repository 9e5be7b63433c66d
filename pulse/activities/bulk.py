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

from pulse.db import SessionFactory
from pulse.domain.bulk import (
    BulkBatch,
    BulkBatchResult,
    BulkSpec,
    BulkStatus,
    BulkSummary,
    ItemStatus,
)
from pulse.repositories.bulk import BulkOperationRepository
from pulse.services.bulk import BulkItemApplier

HEARTBEAT_EVERY_SECONDS = 5


class BulkActivities:
    def __init__(self, sessions: SessionFactory, temporal: Client) -> None:
        self.sessions = sessions
        self.applier = BulkItemApplier(sessions, temporal)

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

        async with _heartbeating():
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


@contextlib.asynccontextmanager
async def _heartbeating() -> Any:
    """Heartbeat every few seconds while the batch runs, so a slow ticket is not mistaken for a
    dead worker (only a dead worker stops these)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
