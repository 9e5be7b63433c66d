"""The client against a Maverick written by someone else: a small server, in this test, that keeps
to the contract but not to the simulator's habits — numeric-looking ids, page-number cursors,
bare arrays for small lists, extra fields, an HTTP-date Retry-After, an exclusive updatedSince
and newest-created-first ties. Nothing in Pulse may depend on the simulator's quirks."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse.devstack import free_port
from pulse.integrations.maverick import MaverickClient, VersionMismatch

BASE = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


class OtherMaverick:
    def __init__(self) -> None:
        self.throttle_next = 0
        self.tickets = {str(1000 + n): {
            "id": str(1000 + n), "merchantId": 77, "merchantName": f"Shop {n}", "subject": f"Case {n}", "body": None,
            "categoryId": 3, "status": "new", "priority": "normal", "contactEmail": None, "contactPhone": None,
            "createdAt": (BASE + timedelta(minutes=n // 2)).isoformat(), "updatedAt": (BASE + timedelta(minutes=n // 2)).isoformat(),
            "version": 1, "lastChangedBy": {"type": "merchant", "name": f"Shop {n}"},
            "slaTier": "gold", "tags": ["x"],  # fields the contract does not name
        } for n in range(7)}

    def app(self) -> Starlette:
        async def tickets(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer other-key":
                return JSONResponse({"error": {"code": "unauthorized", "message": "no"}}, 401)
            if self.throttle_next:
                self.throttle_next -= 1
                later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
                return JSONResponse({"error": {"code": "slow_down", "message": "later"}}, 429,
                                    headers={"Retry-After": later})
            since = request.query_params.get("updatedSince")
            limit = int(request.query_params.get("limit", "50"))
            page = int(request.query_params.get("cursor") or "0")
            rows = sorted(self.tickets.values(), key=lambda t: (t["updatedAt"], -int(t["id"])))
            if since:
                moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
                rows = [t for t in rows if datetime.fromisoformat(t["updatedAt"]) > moment]  # exclusive
            chunk = rows[page * limit:(page + 1) * limit]
            more = (page + 1) * limit < len(rows)
            return JSONResponse({"data": chunk, "nextCursor": str(page + 1) if more else None, "total": len(rows)})

        async def comments(request: Request) -> Response:
            return JSONResponse([{"id": 5, "body": "hi", "internal": False, "author": {"type": "merchant"},
                                  "createdAt": BASE.isoformat(), "reactions": []}])

        async def categories(request: Request) -> Response:
            return JSONResponse([{"id": 3, "name": "Statements", "active": True}])

        async def patch(request: Request) -> Response:
            body = await request.json()
            ticket = self.tickets[request.path_params["ticket_id"]]
            if body.get("expectedVersion") != ticket["version"]:
                return JSONResponse({"error": {"code": "version_mismatch", "message": "stale"}}, 409)
            ticket.update(status=body["status"], version=ticket["version"] + 1)
            return JSONResponse(ticket)

        return Starlette(routes=[
            Route("/api/v1/tickets", tickets), Route("/api/v1/tickets/{ticket_id}/comments", comments),
            Route("/api/v1/categories", categories), Route("/api/v1/tickets/{ticket_id}", patch, methods=["PATCH"]),
        ])


@contextlib.asynccontextmanager
async def serving(other: OtherMaverick) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(other.app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/"  # a base URL with a path and a trailing slash
    finally:
        server.should_exit = True
        await task


async def test_the_client_speaks_to_a_maverick_that_is_not_the_simulator() -> None:
    other = OtherMaverick()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with serving(other) as url, MaverickClient(url, "other-key", sleep=sleep) as client:
        other.throttle_next = 1
        pages = [page async for page in client.tickets_updated_since(None, page_size=3)]
        assert [len(p.data) for p in pages] == [3, 3, 1] and len(waits) == 1 and 0 < waits[0] <= 2.0
        ids = [t.id for p in pages for t in p.data]
        assert sorted(ids) == [str(1000 + n) for n in range(7)] and len(set(ids)) == 7
        later = [t async for p in client.tickets_updated_since(BASE + timedelta(minutes=1)) for t in p.data]
        assert {t.id for t in later} == {"1004", "1005", "1006"}  # strictly after, as this server reads it
        assert (await client.comments("1000"))[0].id == "5"  # a numeric id is still an opaque string
        assert [c.name for c in await client.categories()] == ["Statements"]
        changed = await client.change_status("1002", "assigned", expected_version=1)
        assert changed.version == 2
        with pytest.raises(VersionMismatch):
            await client.change_status("1002", "resolved", expected_version=1)


def test_the_sync_asks_again_a_second_before_its_cursor_so_an_exclusive_server_misses_nothing() -> None:
    from pulse.domain.maverick_sync import since_for

    cursor = BASE + timedelta(minutes=2)
    assert since_for(cursor) == cursor - timedelta(seconds=1) and since_for(None) is None
