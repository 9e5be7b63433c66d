"""/api/tickets/bulk and /api/tickets/merge. Registered before the tickets router, so these
literal paths are never read as a ticket reference."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from pulse.api.deps import Reader, Sessions, Temporal, Writer, get_settings
from pulse.api.errors import validation_details
from pulse.api.routers.tickets import Tickets
from pulse.api.schemas import TicketUpdateBody
from pulse.api.schemas_ticket_ops import BulkBody, MergeBody
from pulse.config import Settings
from pulse.domain.errors import ValidationFailed
from pulse.services.bulk import BulkService
from pulse.services.ticket_merge import MergeService

router = APIRouter(prefix="/api/tickets", tags=["bulk operations and merges"])


def bulk_service(sessions: Sessions, temporal: Temporal,
                 settings: Annotated[Settings, Depends(get_settings)]) -> BulkService:
    return BulkService(sessions, temporal, settings.task_queue)


Bulk = Annotated[BulkService, Depends(bulk_service)]


def _update_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """A bulk ``update`` takes exactly what PATCH takes (same body model, same 422s)."""
    try:
        return TicketUpdateBody.model_validate(changes).changes()
    except ValidationError as error:
        details = [{**d, "field": f"changes.{d['field']}"} for d in validation_details(list(error.errors()))]
        raise ValidationFailed("invalid changes", details=details) from None


@router.post("/bulk", status_code=202)
async def start_bulk_operation(body: BulkBody, principal: Writer, bulk: Bulk, response: Response) -> dict:
    """Change up to 10,000 tickets (by ``ticketIds`` or by a list ``filter``); 202 at once, then
    ``GET /api/tickets/bulk/{id}`` shows the progress."""
    changes = _update_changes(body.change_set) if body.operation == "update" else body.change_set
    bulk_id = await bulk.submit(principal, body.operation, changes, body.ticket_ids, body.filter)
    response.headers["Location"] = f"/api/tickets/bulk/{bulk_id}"
    return {"bulkOperationId": bulk_id}


@router.get("/bulk/{bulk_id}")
async def bulk_operation_progress(bulk_id: int, principal: Reader, bulk: Bulk) -> dict:
    return await bulk.progress(principal.account_id, bulk_id)


@router.post("/merge")
async def merge_tickets(body: MergeBody, principal: Writer, sessions: Sessions, tickets: Tickets) -> dict:
    return await MergeService(sessions, tickets).merge(
        principal, str(body.primary_ticket_id), [str(ref) for ref in body.ticket_ids_to_merge],
        merge_comments=body.merge_comments, merge_attachments=body.merge_attachments,
        close_secondary_tickets=body.close_secondary_tickets,
        add_merge_note=body.add_merge_note,
    )
