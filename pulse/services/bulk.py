"""Bulk operations: change up to 10,000 tickets with the same rules as ``PATCH``.

API side (``BulkService``): validate the change once, resolve the tickets (by ids, or by a list
filter — a snapshot taken now), store the operation with one ``pending`` item per ticket, start
``BulkOperationWorkflow`` and answer 202. Progress is read from the items.

Worker side (``pulse.activities.bulk.BulkItemApplier``): each item is applied as an update of **that ticket's own
workflow** (so validators, the automation cascade and the SLA clock behave exactly as for a
single PATCH), with the deterministic update id ``bulk-<operation>-<ticket>``:

- an item whose outcome is recorded is never sent again (batches reload only pending items);
- an item that was in flight when a worker died is sent again with the same update id: Temporal
  answers an update id once per workflow run, and the ticket activity's command id (workflow id +
  update id) is in ``applied_commands`` once it took effect — checked first, which also covers a
  ticket whose workflow has ended since (closed or deleted by this very item);
- the outcome is stored with ``UPDATE … WHERE status = 'pending'``: recorded exactly once.

So a crash neither skips nor repeats a ticket.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from pulse.db import SessionFactory
from pulse.domain.bulk import (
    MAX_BULK_TICKETS,
    BulkOperationInput,
    BulkOperationKind,
    BulkStatus,
    ItemStatus,
    bulk_workflow_id,
)
from pulse.domain.errors import NotFound, ValidationFailed
from pulse.domain.ticket_query import filters_to_params, parse_ticket_query
from pulse.domain.tickets import Permission, normalise_tags
from pulse.gateway import TemporalUnavailable
from pulse.models import BulkOperation
from pulse.repositories.bulk import BulkOperationRepository
from pulse.repositories.ticket_lists import TicketLists
from pulse.services.auth import Principal
from pulse.services.tickets import TicketService

MAX_ERRORS_SHOWN = 1000


def _validation(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


class BulkService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.task_queue = task_queue
        self.tickets = TicketService(sessions, temporal, task_queue)

    async def _changes(self, principal: Principal, operation: BulkOperationKind,
                       changes: dict[str, Any]) -> dict[str, Any]:
        """The change checked once, as stored: update → snake_case fields like PATCH;
        add/remove tags → {"tags": [...]}; delete → {}."""
        if operation == BulkOperationKind.DELETE:
            if changes:
                raise _validation("changes", "delete takes no changes")
            return {}
        if operation in (BulkOperationKind.ADD_TAGS, BulkOperationKind.REMOVE_TAGS):
            tags = changes.get("tags")
            if set(changes) != {"tags"} or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise _validation("changes", f'{operation.value} takes {{"tags": ["a", "b"]}}')
            tags = normalise_tags(tags)
            if not tags or any(len(tag) > 100 for tag in tags):
                raise _validation("changes.tags", "name 1 or more tags of at most 100 characters")
            return {"tags": tags}
        fields = dict(changes)  # validated like a PATCH body by the router (snake_case)
        if "version" in fields:
            raise _validation("changes.version", "a bulk change applies to each ticket's current version")
        if not fields:
            raise _validation("changes", "name at least one field to change")
        await self.tickets._resolve_category(principal.account_id, fields)
        await self.tickets.check_references(principal.account_id, fields)
        return fields

    async def _ticket_ids(self, principal: Principal, ticket_ids: list[int] | None,
                          filters: dict[str, Any] | None) -> tuple[list[int], set[int]]:
        """The tickets to change, in order, and those of them not found in the account."""
        async with self.sessions() as session:
            if ticket_ids is not None:
                wanted = list(dict.fromkeys(ticket_ids))
                if len(wanted) > MAX_BULK_TICKETS:
                    raise _validation("ticketIds", f"at most {MAX_BULK_TICKETS} tickets per operation")
                found = set(await TicketLists(session).existing_ids(principal.account_id, wanted))
                return wanted, {t for t in wanted if t not in found}
            assert filters is not None
            try:
                query = parse_ticket_query(filters_to_params(filters), allow_paging=False)
            except ValidationFailed as error:
                raise ValidationFailed("invalid filter", details=[
                    {**d, "field": d["field"] if d["field"].startswith("filter.") else f"filter.{d['field']}"}
                    for d in error.details]) from None
            lists = TicketLists(session)
            ids = await lists.ids_matching(principal.account_id, query, limit=MAX_BULK_TICKETS + 1,
                                           include_internal=principal.has(Permission.WRITE_SUPPORT))
            if len(ids) > MAX_BULK_TICKETS:
                raise _validation("filter", f"matches more than {MAX_BULK_TICKETS} tickets; narrow it or split the work")
            return ids, set()

    async def submit(self, principal: Principal, operation: str, changes: dict[str, Any],
                     ticket_ids: list[int] | None, filters: dict[str, Any] | None) -> int:
        """Store the operation and its items, start its workflow; the operation's id.
        Queries: 1–2 to validate, 1 to select the tickets, 2 inserts; 1 workflow start."""
        kind = BulkOperationKind(operation)
        stored_changes = await self._changes(principal, kind, changes)
        ids, missing = await self._ticket_ids(principal, ticket_ids, filters)
        async with self.sessions() as session, session.begin():
            bulk = await BulkOperationRepository(session).create(
                BulkOperation(account_id=principal.account_id, created_by=principal.user_id, operation=kind.value,
                              changes=stored_changes, filter=filters, total=len(ids)),
                ids, missing,
            )
            bulk_id = bulk.id
            bulk.workflow_id = bulk_workflow_id(principal.account_id, bulk_id)
        try:
            await self.temporal.start_workflow(
                "BulkOperationWorkflow",
                BulkOperationInput(bulk_operation_id=bulk_id, account_id=principal.account_id, total=len(ids)),
                id=bulk_workflow_id(principal.account_id, bulk_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"bulk {kind.value} of {len(ids)} tickets",
            )
        except RPCError as error:
            async with self.sessions() as session, session.begin():
                await BulkOperationRepository(session).set_status(bulk_id, BulkStatus.FAILED.value, finished=True)
            raise TemporalUnavailable(f"the bulk operation could not be started: {error}") from None
        return bulk_id

    async def progress(self, account_id: int, bulk_id: int) -> dict[str, Any]:
        """``{status, total, succeeded, failed, pending, errors}``, live (3 queries)."""
        async with self.sessions() as session:
            repository = BulkOperationRepository(session)
            bulk = await repository.get(account_id, bulk_id)
            if bulk is None:
                raise NotFound(f"bulk operation {bulk_id} not found")
            counts = await repository.counts(bulk_id)
            failures = await repository.failures(bulk_id, MAX_ERRORS_SHOWN) if counts.get("failed") else []
        failed = counts.get(ItemStatus.FAILED.value, 0)
        body = {
            "bulkOperationId": bulk.id,
            "operation": bulk.operation,
            "status": bulk.status,
            "total": bulk.total,
            "succeeded": counts.get(ItemStatus.SUCCEEDED.value, 0),
            "failed": failed,
            "pending": counts.get(ItemStatus.PENDING.value, 0),
            "errors": [{"ticketId": item.ticket_id, "error": item.error, "code": item.error_code} for item in failures],
            "createdAt": bulk.created_at.isoformat(),
            "startedAt": bulk.started_at.isoformat() if bulk.started_at else None,
            "finishedAt": bulk.finished_at.isoformat() if bulk.finished_at else None,
        }
        if failed > len(failures):
            body["errorsOmitted"] = failed - len(failures)
        return body
