"""/api/tickets: reads from PostgreSQL, writes through the ticket's workflow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from pulse.api.deps import IdempotencyKeyHeader, IfMatchHeader, Reader, Writer
from pulse.api.pagination import Page, page_params, paginated, pagination
from pulse.api.schemas import CommentBody, TicketCreateBody, TicketUpdateBody
from pulse.domain.commands import AddCommentInput
from pulse.domain.errors import ValidationFailed
from pulse.domain.ticket_query import TicketQuery, parse_ticket_query
from pulse.domain.tickets import Permission
from pulse.services.auth import Principal
from pulse.services.tickets import TicketList, TicketService, actor_of

router = APIRouter(prefix="/api/tickets", tags=["tickets"])
# ``GET /api/tickets`` alone, included before every other router (pulse.api.app): the most asked
# route is matched first instead of after the ~75 routes before ``router``.
list_router = APIRouter(prefix="/api/tickets", tags=["tickets"])


async def ticket_service(request: Request) -> TicketService:
    """From the app's state directly: one dependency for FastAPI to solve per request, not three
    (~30 µs each on a ticket list)."""
    state = request.app.state
    return TicketService(state.sessions, state.temporal, state.settings.task_queue, search_index=state.search_index)


Tickets = Annotated[TicketService, Depends(ticket_service)]


def expected_version(if_match: str | None, body_version: int | None) -> int | None:
    """``If-Match: 3`` (quotes and W/ tolerated) or ``"version": 3`` in the body. ``If-Match: *``
    matches whatever version the resource has (RFC 9110): only the body's version, if any, holds."""
    if if_match is None or if_match.strip() == "*":
        return body_version
    cleaned = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(cleaned)
    except ValueError:
        raise ValidationFailed("If-Match must be a version number or *",
                               details=[{"field": "If-Match", "message": "not an integer"}]) from None


@router.post("", status_code=201)
async def create_ticket(body: TicketCreateBody, principal: Writer, tickets: Tickets, response: Response,
                        idempotency_key: IdempotencyKeyHeader = None) -> dict:
    ticket, created = await tickets.create(principal, body.changes(), idempotency_key)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/tickets/{ticket.id}"
    return ticket.to_api()


@list_router.get("")
async def list_tickets(request: Request, principal: Reader, tickets: Tickets) -> dict:
    """Filters, sorts and full-text search: see ``pulse.domain.ticket_query`` (the parameters) and
    ``pulse.repositories.ticket_lists`` (how they run). Internal notes are searched only for
    callers with writeSupport. ``Server-Timing: repo;dur=…`` tells the repository call's share of
    the answer (the ``app`` entry of the Observability middleware tells the whole). The body is
    encoded here (pydantic-core, as FastAPI would) and returned as is: FastAPI would first validate
    the 50 tickets' dicts against the ``dict`` return type, for nothing."""
    query = parse_ticket_query(request.query_params)
    listed = await tickets.list_page(principal.account_id, query,
                                     include_internal=principal.has(Permission.WRITE_SUPPORT))
    return Response(to_json(render_ticket_list(listed, query)), media_type="application/json",
                    headers={"Server-Timing": f"repo;dur={listed.repository_ms:.2f};desc={listed.engine}"})


def render_ticket_list(listed: TicketList, query: TicketQuery) -> dict[str, Any]:
    """``{"tickets", "pagination"}``; a search adds ``searchSnippet`` to each ticket; a total above
    10,000 is the planner's estimate and says so with ``pagination.totalIsEstimate``."""
    rendered = listed.tickets
    if query.search is not None:
        for body in rendered:
            body["searchSnippet"] = listed.snippets.get(body["id"])
    page = pagination(query.page, query.page_size, listed.total)
    if listed.total_is_estimate:
        page["totalIsEstimate"] = True
    return {"tickets": rendered, "pagination": page}


@router.get("/{ticket_ref}")
async def get_ticket(ticket_ref: str, principal: Reader, tickets: Tickets) -> dict:
    return (await tickets.get(principal.account_id, ticket_ref)).to_api()


@router.patch("/{ticket_ref}")
async def update_ticket(ticket_ref: str, body: TicketUpdateBody, principal: Writer, tickets: Tickets,
                        if_match: IfMatchHeader = None) -> dict:
    changes = body.changes()
    version = expected_version(if_match, changes.pop("version", None))
    return (await tickets.update(principal, ticket_ref, changes, version)).to_api()


@router.delete("/{ticket_ref}")
async def delete_ticket(ticket_ref: str, principal: Writer, tickets: Tickets,
                        if_match: IfMatchHeader = None) -> dict:
    return (await tickets.delete(principal, ticket_ref, expected_version(if_match, None))).to_api()


@router.post("/{ticket_ref}/comments", status_code=201)
async def add_comment(ticket_ref: str, body: CommentBody, principal: Writer, tickets: Tickets,
                      idempotency_key: IdempotencyKeyHeader = None) -> dict:
    command = AddCommentInput(actor=actor_of(principal), **body.changes())
    return (await tickets.add_comment(principal, ticket_ref, command, idempotency_key)).to_api()


@router.get("/{ticket_ref}/comments")
async def list_comments(ticket_ref: str, principal: Reader, tickets: Tickets,
                        page: Annotated[Page, Depends(page_params)],
                        include_internal: Annotated[bool, Query(alias="includeInternal")] = True) -> dict:
    rows, total = await tickets.comments(principal, ticket_ref, include_internal=include_internal,
                                         page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


@router.get("/{ticket_ref}/timeline")
async def timeline(ticket_ref: str, principal: Reader, tickets: Tickets,
                   page: Annotated[Page, Depends(page_params)]) -> dict:
    rows, total = await tickets.timeline(principal.account_id, ticket_ref, page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)
