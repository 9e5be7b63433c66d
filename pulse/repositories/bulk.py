"""Bulk operations and their per-ticket items."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.bulk import ItemOutcome, ItemStatus
from pulse.domain.ids import is_storable_id
from pulse.models import AppliedCommand, BulkOperation, BulkOperationItem


class BulkOperationRepository:
    INSERT_ITEMS = text(
        """
        INSERT INTO bulk_operation_items (bulk_operation_id, position, ticket_id, status, error_code, error, finished_at)
        SELECT :bulk_id, item.ordinal - 1, item.ticket_id, item.status,
               CASE WHEN item.status = 'failed' THEN 'not_found' END,
               CASE WHEN item.status = 'failed' THEN 'ticket ' || item.ticket_id || ' not found' END,
               CASE WHEN item.status = 'failed' THEN now() END
          FROM unnest(CAST(:ticket_ids AS bigint[]), CAST(:statuses AS text[]))
               WITH ORDINALITY AS item(ticket_id, status, ordinal)
        """
    )

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, operation: BulkOperation, ticket_ids: list[int], missing: set[int]) -> BulkOperation:
        """The operation and one item per ticket, in order (2 statements). Tickets not found in
        the account are recorded as failed items right away."""
        self.session.add(operation)
        await self.session.flush()
        if ticket_ids:
            statuses = [ItemStatus.FAILED.value if t in missing else ItemStatus.PENDING.value for t in ticket_ids]
            await self.session.execute(self.INSERT_ITEMS, {"bulk_id": operation.id, "ticket_ids": ticket_ids,
                                                           "statuses": statuses})
        return operation

    async def get(self, account_id: int, bulk_id: int) -> BulkOperation | None:
        if not is_storable_id(bulk_id):
            return None  # past bigint: no such operation
        return await self.session.scalar(
            select(BulkOperation).where(BulkOperation.id == bulk_id, BulkOperation.account_id == account_id)
        )

    async def by_id(self, bulk_id: int) -> BulkOperation | None:
        return await self.session.get(BulkOperation, bulk_id)

    async def counts(self, bulk_id: int) -> dict[str, int]:
        """Items per status (1 query over the (bulk_operation_id, status) index)."""
        rows = await self.session.execute(
            select(BulkOperationItem.status, func.count())
            .where(BulkOperationItem.bulk_operation_id == bulk_id)
            .group_by(BulkOperationItem.status)
        )
        return {status: int(count) for status, count in rows}

    async def failures(self, bulk_id: int, limit: int) -> Sequence[BulkOperationItem]:
        return list(await self.session.scalars(
            select(BulkOperationItem)
            .where(BulkOperationItem.bulk_operation_id == bulk_id, BulkOperationItem.status == ItemStatus.FAILED.value)
            .order_by(BulkOperationItem.position)
            .limit(limit)
        ))

    async def pending_items(self, bulk_id: int, first: int, end: int) -> list[tuple[int, int]]:
        """(position, ticket_id) of the batch's items without an outcome yet."""
        rows = await self.session.execute(
            select(BulkOperationItem.position, BulkOperationItem.ticket_id)
            .where(BulkOperationItem.bulk_operation_id == bulk_id,
                   BulkOperationItem.position >= first, BulkOperationItem.position < end,
                   BulkOperationItem.status == ItemStatus.PENDING.value)
            .order_by(BulkOperationItem.position)
        )
        return [(position, ticket_id) for position, ticket_id in rows]

    async def record(self, bulk_id: int, position: int, outcome: ItemOutcome) -> bool:
        """Store an item's outcome, once: False if it had one already (1 UPDATE)."""
        result: Any = await self.session.execute(
            update(BulkOperationItem)
            .where(BulkOperationItem.bulk_operation_id == bulk_id, BulkOperationItem.position == position,
                   BulkOperationItem.status == ItemStatus.PENDING.value)
            .values(status=outcome.status.value, error_code=outcome.error_code, error=outcome.error,
                    finished_at=datetime.now(timezone.utc))
        )
        return bool(result.rowcount)

    async def set_status(self, bulk_id: int, status: str, *, started: bool = False, finished: bool = False) -> None:
        values: dict[str, Any] = {"status": status}
        if started:
            values["started_at"] = func.coalesce(BulkOperation.started_at, func.now())
        if finished:
            values["finished_at"] = func.coalesce(BulkOperation.finished_at, func.now())
        await self.session.execute(update(BulkOperation).where(BulkOperation.id == bulk_id).values(**values))

    async def applied(self, command_id: str) -> bool:
        """Whether a ticket command already took effect (its outcome is in ``applied_commands``)."""
        found = await self.session.scalar(select(AppliedCommand.command_id).where(AppliedCommand.command_id == command_id))
        return found is not None
