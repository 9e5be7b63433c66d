"""The simulator's HTTP server: Maverick's contract under ``/v1`` (``../shared/spec/maverick-api.md``)
and the control panel under ``/_admin`` (``admin.py``)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.integrations.maverick.simulator.admin import admin_router
from pulse.integrations.maverick.simulator.faults import Faults
from pulse.integrations.maverick.simulator.sender import Target, WebhookSender
from pulse.integrations.maverick.simulator.state import SimError, SimState, page_of
from pulse.integrations.maverick.wire import Author

MAX_DOCUMENT_BYTES = 25 * 1024 * 1024


@dataclass
class Simulator:
    """One simulated Maverick tenant: its data, its faults, its webhook sender and its API key."""

    api_key: str = "maverick-sim-key"
    faults: Faults = field(default_factory=Faults)
    state: SimState = field(default_factory=SimState)
    sender: WebhookSender | None = None

    def __post_init__(self) -> None:
        self.sender = self.sender or WebhookSender(self.faults)
        self.state.on_event = self.sender.emit

    def send_webhooks_to(self, url: str, secret: str) -> None:
        assert self.sender is not None
        self.sender.targets = [t for t in self.sender.targets if t.url != url] + [Target(url, secret)]


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class StatusChange(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    status: str
    expected_version: int | None = None


class NewComment(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    body: str
    internal: bool = False
    external_id: str | None = None


def create_simulator_app(sim: Simulator | None = None) -> FastAPI:
    sim = sim or Simulator()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        assert sim.sender is not None
        await sim.sender.start()
        try:
            yield
        finally:
            await sim.sender.stop()

    app = FastAPI(title="Maverick simulator", lifespan=lifespan, docs_url="/_admin/docs", openapi_url="/_admin/openapi.json")
    app.state.sim = sim

    @app.middleware("http")
    async def contract_rules(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        if sim.faults.latency_ms:
            await asyncio.sleep(sim.faults.latency_ms / 1000)
        failure = sim.faults.next_call_fails()
        if failure is not None:
            status, retry_after = failure
            if status == 429:
                return error(429, "rate_limited", "too many requests", {"Retry-After": str(retry_after)})
            return error(status, "unavailable", "Maverick is having a moment")
        if request.headers.get("authorization") != f"Bearer {sim.api_key}":
            return error(401, "unauthorized", "a valid API key is required (Authorization: Bearer <apiKey>)")
        return await call_next(request)

    @app.exception_handler(SimError)
    async def sim_error(_: Request, problem: SimError) -> JSONResponse:
        return error(problem.status, problem.code, problem.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, problem: RequestValidationError) -> JSONResponse:
        first = problem.errors()[0] if problem.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path"))
        return error(422, "invalid_request", f"{where}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, problem: StarletteHTTPException) -> JSONResponse:
        return error(problem.status_code, "not_found" if problem.status_code == 404 else "error", str(problem.detail))

    state = sim.state

    @app.get("/v1/categories")
    async def categories(cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        items, next_cursor = page_of(sorted(state.categories.values(), key=lambda c: c.id), cursor, _limit(limit))
        return {"data": [c.to_wire() for c in items], "nextCursor": next_cursor}

    @app.get("/v1/tickets")
    async def tickets(updatedSince: str | None = None, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
        since = _timestamp(updatedSince) if updatedSince else None
        items, next_cursor = state.changed_since(since, cursor, _limit(limit))
        return {"data": [t.to_wire() for t in items], "nextCursor": next_cursor}

    @app.get("/v1/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, Any]:
        return state.ticket(ticket_id).to_wire()

    @app.patch("/v1/tickets/{ticket_id}")
    async def change_status(ticket_id: str, change: StatusChange) -> dict[str, Any]:
        changed = state.change_ticket(ticket_id, {"status": change.status}, changed_by=_integration(),
                                      expected_version=change.expected_version)
        return changed.to_wire()

    @app.get("/v1/tickets/{ticket_id}/comments")
    async def comments(ticket_id: str, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        state.ticket(ticket_id)
        items, next_cursor = page_of(state.comments.get(ticket_id, []), cursor, _limit(limit))
        return {"data": [c.to_wire() for c in items], "nextCursor": next_cursor}

    @app.post("/v1/tickets/{ticket_id}/comments", status_code=201)
    async def add_comment(ticket_id: str, comment: NewComment, response: Response) -> dict[str, Any]:
        stored, created = state.add_comment(ticket_id, body=comment.body, internal=comment.internal,
                                            author=_integration(), external_id=comment.external_id)
        response.status_code = 201 if created else 200
        return stored.to_wire()

    @app.get("/v1/tickets/{ticket_id}/documents")
    async def documents(ticket_id: str, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        items, next_cursor = page_of(state.ticket_documents(ticket_id), cursor, _limit(limit))
        return {"data": [d.to_wire() for d in items], "nextCursor": next_cursor}

    @app.post("/v1/tickets/{ticket_id}/documents", status_code=201)
    async def add_document(ticket_id: str, request: Request, response: Response) -> dict[str, Any]:
        form = await request.form(max_part_size=MAX_DOCUMENT_BYTES)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise SimError(422, "invalid_request", "a multipart field 'file' is required")
        external_id = form.get("externalId")
        content = await upload.read()
        stored, created = state.add_document(
            ticket_id, file_name=upload.filename or "document", content=content,
            content_type=upload.content_type or "application/octet-stream", author=_integration(),
            external_id=external_id if isinstance(external_id, str) and external_id else None)
        response.status_code = 201 if created else 200
        return stored.to_wire()

    @app.get("/v1/documents/{document_id}/content")
    async def document_content(document_id: str) -> Response:
        stored = state.document(document_id)
        return Response(stored.content, media_type=stored.meta.content_type)

    app.include_router(admin_router)
    return app


def _integration() -> Author:
    return Author(type="integration", name="API client")


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise SimError(400, "invalid_limit", "limit must be between 1 and 100")
    return limit


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SimError(400, "invalid_parameter", "updatedSince must be an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise SimError(400, "invalid_parameter", "updatedSince needs a UTC offset")
    return moment
