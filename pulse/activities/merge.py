"""The primary's merge asks each secondary's own workflow to merge into it (through the gateway):
the secondary's row is written by its workflow alone."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity
from temporalio.client import Client

from pulse.domain import records
from pulse.domain.commands import MergeIntoRequest
from pulse.domain.errors import DomainError, NotFound
from pulse.failures import to_application_error
from pulse.gateway import NoRunningWorkflow, TicketGateway


class MergeActivities:
    def __init__(self, temporal: Client, task_queue: str) -> None:
        self.gateway = TicketGateway(temporal, task_queue)

    @activity.defn
    async def merge_into_primary(self, request: MergeIntoRequest) -> records.Ticket:
        """The secondary after its merge; a domain error (closed, already merged, not found) fails
        at once; a secondary whose workflow has ended is not running, so it cannot be merged."""
        try:
            try:
                return await self.gateway.merge_into(request.account_id, request.secondary_ticket_id, request.input)
            except NoRunningWorkflow:
                return await self.gateway.merge_into(request.account_id, request.secondary_ticket_id, request.input,
                                                     resume=True)
        except NoRunningWorkflow:
            raise to_application_error(NotFound(f"ticket {request.secondary_ticket_id} not found")) from None
        except DomainError as error:
            if error.status >= 500:
                raise
            raise to_application_error(error) from None

    def all(self) -> list[Callable[..., Any]]:
        return [self.merge_into_primary]
