"""/api/views: saved views (named filters + sort) and the tickets they show, with a count."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from pulse.api.deps import IfMatchHeader, Reader, Session
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import Tickets, expected_version, render_ticket_list
from pulse.api.schemas_ticket_ops import ViewBody
from pulse.domain.tickets import Permission
from pulse.repositories.ticket_lists import TicketLists
from pulse.services.views import SavedViewRecord, SavedViewService

router = APIRouter(prefix="/api/views", tags=["saved views"])


def view_service(session: Session) -> SavedViewService:
    return SavedViewService(session)


Views = Annotated[SavedViewService, Depends(view_service)]


@router.get("")
async def list_views(principal: Reader, views: Views, session: Session, page: Annotated[Page, Depends(page_params)],
                     include_counts: Annotated[bool, Query(alias="includeCounts")] = False) -> dict:
    """Own and shared views. ``includeCounts=true`` adds ``ticketCount`` (+ ``ticketCountIsEstimate``)
    to each: one bounded count per view (exact up to 10,000, else the planner's estimate)."""
    rows, total = await views.list(principal, page.page, page.page_size)
    rendered = []
    for view in rows:
        body = SavedViewRecord.model_validate(view).to_api()
        if include_counts:
            lists = TicketLists(session)
            query = views.query(view, 1, 1)
            count, estimated = await lists.count(
                lists.matching(principal.account_id, query, principal.has(Permission.WRITE_SUPPORT)))
            body["ticketCount"], body["ticketCountIsEstimate"] = count, estimated
        rendered.append(body)
    return paginated(rendered, page, total)


@router.post("", status_code=201)
async def create_view(body: ViewBody, principal: Reader, views: Views, response: Response) -> dict:
    view = await views.create(principal, body.name, body.filters, body.sort, body.shared)
    response.headers["Location"] = f"/api/views/{view.id}"
    return SavedViewRecord.model_validate(view).to_api()


@router.get("/{view_id}")
async def get_view(view_id: int, principal: Reader, views: Views) -> dict:
    return SavedViewRecord.model_validate(await views.get(principal, view_id)).to_api()


@router.put("/{view_id}")
async def replace_view(view_id: int, body: ViewBody, principal: Reader, views: Views,
                       if_match: IfMatchHeader = None) -> dict:
    version = expected_version(if_match, body.version)
    view = await views.replace(principal, view_id, body.name, body.filters, body.sort, body.shared, version)
    return SavedViewRecord.model_validate(view).to_api()


@router.delete("/{view_id}", status_code=204)
async def delete_view(view_id: int, principal: Reader, views: Views) -> Response:
    await views.delete(principal, view_id)
    return Response(status_code=204)


@router.get("/{view_id}/tickets")
async def view_tickets(view_id: int, principal: Reader, views: Views, tickets: Tickets,
                       page: Annotated[Page, Depends(page_params)]) -> dict:
    """The view's tickets, one page, with the total (``pagination.total``)."""
    view = await views.get(principal, view_id)
    query = views.query(view, page.page, page.page_size)
    listed = await tickets.list_page(principal.account_id, query,
                                     include_internal=principal.has(Permission.WRITE_SUPPORT))
    return {"view": SavedViewRecord.model_validate(view).to_api(), **render_ticket_list(listed, query)}
