"""Bulk operations (``POST /api/tickets/bulk``): vocabulary shared by the API, the
``BulkOperationWorkflow`` and its activities. Pure."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

MAX_BULK_TICKETS = 10_000
BATCH_SIZE = 100  # tickets per activity call (one heartbeat per ticket)
PARALLEL_BATCHES = 4  # batches in flight at once …
TICKETS_PER_BATCH_IN_FLIGHT = 10  # … each with this many ticket updates in flight: 40 at most


class BulkOperationKind(StrEnum):
    UPDATE = "update"
    DELETE = "delete"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"


class BulkStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BulkOperationInput(BaseModel):
    bulk_operation_id: int
    account_id: int
    total: int
    batch_size: int = BATCH_SIZE
    parallel_batches: int = PARALLEL_BATCHES
    in_flight_per_batch: int = TICKETS_PER_BATCH_IN_FLIGHT


class BulkBatch(BaseModel):
    """Items ``first_position`` ≤ position < ``end_position`` of one bulk operation."""

    bulk_operation_id: int
    first_position: int
    end_position: int
    in_flight: int = TICKETS_PER_BATCH_IN_FLIGHT


class BulkBatchResult(BaseModel):
    succeeded: int = 0
    failed: int = 0
    already_done: int = 0


class BulkSummary(BaseModel):
    total: int
    succeeded: int
    failed: int


class ItemOutcome(BaseModel):
    status: ItemStatus
    error_code: str | None = None
    error: str | None = None

    @classmethod
    def success(cls) -> "ItemOutcome":
        return cls(status=ItemStatus.SUCCEEDED)

    @classmethod
    def failure(cls, code: str, message: str) -> "ItemOutcome":
        return cls(status=ItemStatus.FAILED, error_code=code, error=message)


class BulkSpec(BaseModel):
    """What a bulk operation does to each ticket (as stored in ``bulk_operations``)."""

    id: int
    account_id: int
    created_by: int | None = None
    operation: BulkOperationKind
    changes: dict[str, Any] = {}


def update_id_for(bulk_operation_id: int, ticket_id: int) -> str:
    """The ticket workflow update id of one bulk item: a retried item is the same update, which
    Temporal answers once (and the ticket's activity applies once, by command id)."""
    return f"bulk-{bulk_operation_id}-{ticket_id}"


def bulk_workflow_id(account_id: int, bulk_operation_id: int) -> str:
    return f"bulk-{account_id}-{bulk_operation_id}"
