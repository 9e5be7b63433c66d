"""The simulator's control panel (``/_admin``, no auth: a test and demo tool on loopback).

- ``POST /_admin/faults`` ``{failNext, failStatus, retryAfterSeconds, failRate, latencyMs,
  dropWebhooks, duplicateWebhooks, reorderWebhooks, webhookLatencyMs}``; ``DELETE`` resets them.
- ``POST /_admin/webhooks/targets`` ``{url, secret}``: send signed events there;
  ``GET /_admin/webhooks/log``; ``POST /_admin/webhooks/release`` sends held (reordered) events.
- Changes "as a merchant would": ``POST /_admin/tickets``, ``PATCH /_admin/tickets/{id}``,
  ``POST /_admin/tickets/{id}/comments``, ``POST /_admin/tickets/{id}/documents`` (base64 content).
- ``POST /_admin/seed`` ``{tickets}``: add seed tickets; ``GET /_admin/state``: counts.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pulse.integrations.maverick.simulator.faults import FaultSettings
from pulse.integrations.maverick.simulator.seed import seed_tickets
from pulse.integrations.maverick.simulator.state import SimError
from pulse.integrations.maverick.wire import Author

admin_router = APIRouter(prefix="/_admin", tags=["simulator control"])


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WebhookTarget(Camel):
    url: str = Field(min_length=1)
    secret: str = Field(min_length=1)


class MerchantTicket(Camel):
    subject: str = Field(min_length=1)
    body: str = ""
    category_id: int | None = None
    status: str = "new"
    priority: str = "normal"
    merchant_name: str = "Merchant"
    contact_email: str | None = None
    contact_phone: str | None = None


class MerchantChange(Camel):
    subject: str | None = None
    body: str | None = None
    category_id: int | None = None
    status: str | None = None
    priority: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    by: str = Field(default="merchant", pattern="^(merchant|agent)$")


class MerchantComment(Camel):
    body: str = Field(min_length=1)
    internal: bool = False
    by: str = Field(default="merchant", pattern="^(merchant|agent|system)$")


class MerchantDocument(Camel):
    file_name: str = Field(min_length=1)
    content_type: str = "application/octet-stream"
    content_base64: str


class Seed(Camel):
    tickets: int = Field(default=25, ge=0, le=100_000)


def _sim(request: Request) -> Any:
    return request.app.state.sim


@admin_router.get("/state")
async def state_counts(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    return {"tickets": len(sim.state.tickets), "comments": sum(len(c) for c in sim.state.comments.values()),
            "documents": len(sim.state.documents), "integrationWrites": sim.state.integration_writes,
            "faults": sim.faults.shown(),
            "webhookTargets": [t.url for t in sim.sender.targets]}


@admin_router.post("/faults")
async def set_faults(settings: FaultSettings, request: Request) -> dict[str, Any]:
    _sim(request).faults.apply(settings)
    return _sim(request).faults.shown()


@admin_router.delete("/faults")
async def reset_faults(request: Request) -> dict[str, Any]:
    _sim(request).faults.reset()
    return _sim(request).faults.shown()


@admin_router.post("/webhooks/targets", status_code=201)
async def add_target(target: WebhookTarget, request: Request) -> dict[str, Any]:
    _sim(request).send_webhooks_to(target.url, target.secret)
    return {"url": target.url}


@admin_router.get("/webhooks/log")
async def webhook_log(request: Request) -> dict[str, Any]:
    return {"data": [entry.shown() for entry in _sim(request).sender.log]}


@admin_router.post("/webhooks/release")
async def release(request: Request) -> dict[str, Any]:
    _sim(request).sender.release_held()
    return {"released": True}


@admin_router.post("/tickets", status_code=201)
async def merchant_creates(ticket: MerchantTicket, request: Request) -> dict[str, Any]:
    created = _sim(request).state.create_ticket(**ticket.model_dump(),
                                                changed_by=Author(type="merchant", name=ticket.merchant_name))
    return created.to_wire()


@admin_router.patch("/tickets/{ticket_id}")
async def merchant_changes(ticket_id: str, change: MerchantChange, request: Request) -> dict[str, Any]:
    fields = change.model_dump(exclude_unset=True, exclude={"by"})
    state = _sim(request).state
    name = state.ticket(ticket_id).merchant_name if change.by == "merchant" else "Maverick agent"
    return state.change_ticket(ticket_id, fields, changed_by=Author(type=change.by, name=name)).to_wire()


@admin_router.post("/tickets/{ticket_id}/comments", status_code=201)
async def merchant_comments(ticket_id: str, comment: MerchantComment, request: Request) -> dict[str, Any]:
    state = _sim(request).state
    name = state.ticket(ticket_id).merchant_name if comment.by == "merchant" else f"Maverick {comment.by}"
    stored, _ = state.add_comment(ticket_id, body=comment.body, internal=comment.internal,
                                  author=Author(type=comment.by, name=name))
    return stored.to_wire()


@admin_router.post("/tickets/{ticket_id}/documents", status_code=201)
async def merchant_uploads(ticket_id: str, document: MerchantDocument, request: Request) -> dict[str, Any]:
    try:
        content = base64.b64decode(document.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise SimError(422, "invalid_request", "contentBase64 is not base64") from None
    state = _sim(request).state
    stored, _ = state.add_document(ticket_id, file_name=document.file_name, content_type=document.content_type,
                                   content=content, author=Author(type="merchant", name=state.ticket(ticket_id).merchant_name))
    return stored.to_wire()


@admin_router.post("/seed")
async def seed(body: Seed, request: Request) -> dict[str, Any]:
    created = seed_tickets(_sim(request).state, body.tickets)
    return {"created": len(created)}
