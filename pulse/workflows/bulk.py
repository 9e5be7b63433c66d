"""BulkOperationWorkflow: applies one bulk operation to its tickets (``bulk-<account>-<id>``).

The items (one per ticket, in ``bulk_operation_items``) are processed in batches of
``batch_size`` positions; ``parallel_batches`` batch activities run at once, each with
``in_flight_per_batch`` ticket updates in flight (40 in all by default: enough to keep the
ticket workflows busy, few enough not to starve interactive traffic). Each ticket is changed
through its own TicketWorkflow update, so validation, automation and the SLA clock behave as for
a single PATCH. A batch is retried after a crash (heartbeat timeout) and skips the items whose
outcome is recorded; in-flight ones are re-sent with the same update id (see
``pulse.services.bulk``). History stays small: ~3 events per batch, 100 batches for 10,000.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pulse.activities.bulk import BulkActivities
    from pulse.domain.bulk import BulkBatch, BulkBatchResult, BulkOperationInput, BulkSummary

BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BATCH_TIMEOUT = timedelta(minutes=30)
BATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Infrastructure failures (database, Temporal) are waited out: the operation finishes eventually.
RETRY_FOREVER = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                            maximum_attempts=0)


@workflow.defn
class BulkOperationWorkflow:
    def __init__(self) -> None:
        self.succeeded = 0
        self.failed = 0

    @workflow.run
    async def run(self, input: BulkOperationInput) -> BulkSummary:
        await workflow.execute_activity(
            BulkActivities.start_bulk_operation, input.bulk_operation_id, start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=RETRY_FOREVER, summary=f"start bulk operation {input.bulk_operation_id}",
        )
        slots = asyncio.Semaphore(max(1, input.parallel_batches))

        async def run_batch(first: int) -> None:
            end = min(first + input.batch_size, input.total)
            async with slots:
                result = await workflow.execute_activity(
                    BulkActivities.apply_bulk_batch,
                    BulkBatch(bulk_operation_id=input.bulk_operation_id, first_position=first, end_position=end,
                              in_flight=input.in_flight_per_batch),
                    start_to_close_timeout=BATCH_TIMEOUT,
                    heartbeat_timeout=BATCH_HEARTBEAT_TIMEOUT,
                    retry_policy=RETRY_FOREVER,
                    summary=f"tickets {first + 1}–{end} of {input.total}",
                )
            self.succeeded += result.succeeded
            self.failed += result.failed

        await asyncio.gather(*(run_batch(first) for first in range(0, input.total, input.batch_size)))
        return await workflow.execute_activity(
            BulkActivities.finish_bulk_operation, input.bulk_operation_id, start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=RETRY_FOREVER,
            summary=f"finish bulk operation {input.bulk_operation_id}",
        )
