"""The Maverick integration (spec §8): its config (manageSettings; secrets write-only, masked on
read, ``webhookUrl`` shown), its category → ticket type mappings (manageSettings), and the
account's webhook URL, which Maverick calls signed instead of with a token."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import Field
from temporalio.service import RPCError

from pulse.api.deps import IfMatchHeader, Manager, Session, Sessions, Temporal
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import Body, Id
from pulse.config import Settings
from pulse.domain.errors import DomainError
from pulse.domain.maverick import SyncDirection, webhook_path
from pulse.integrations.maverick import SIGNATURE_HEADER
from pulse.secretbox import SecretBox
from pulse.gateway import TemporalUnavailable
from pulse.services.maverick import MaverickConfigService, MaverickMappingService, SyncRunService
from pulse.services.maverick_schedules import MaverickSyncScheduler
from pulse.services.maverick_webhooks import MaverickWebhookService

router = APIRouter(prefix="/api/integrations/maverick", tags=["maverick"])

MAX_WEBHOOK_BYTES = 1024 * 1024


def secret_box(request: Request) -> SecretBox:
    """One per app, made from the settings' key on first use."""
    box = getattr(request.app.state, "secret_box", None)
    if box is None:
        settings: Settings = request.app.state.settings
        box = SecretBox(settings.secrets_key.get_secret_value() if settings.secrets_key else None)
        request.app.state.secret_box = box
    return box


Box = Annotated[SecretBox, Depends(secret_box)]


class ConfigBody(Body):
    """Fields left out keep their values; ``null`` resets one to its default. Secrets are
    write-only: leave them out (or send back the masked value) to keep them."""

    enabled: bool | None = None
    api_url: str | None = Field(default=None, max_length=2000)
    api_key: str | None = Field(default=None, max_length=1000, description="write-only")
    webhook_secret: str | None = Field(default=None, max_length=1000, description="write-only")
    auto_sync: bool | None = None
    sync_interval_minutes: int | None = None
    sync_direction: SyncDirection | None = None
    default_assignee_id: int | None = None
    default_team_id: int | None = None
    sync_internal_notes: bool | None = None
    status_mapping: dict[str, Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=100)
    version: int | None = None


class MappingBody(Body):
    maverick_category_id: Id
    maverick_category_name: str | None = Field(default=None, max_length=200)
    pulse_ticket_type_id: Id | None = None
    pulse_category_id: Id | None = None
    version: int | None = None


def _webhook_url(request: Request, account_id: int) -> str:
    settings: Settings = request.app.state.settings
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return base + webhook_path(account_id)


@router.get("/config")
async def get_config(request: Request, principal: Manager, session: Session, box: Box) -> dict[str, Any]:
    record = await MaverickConfigService(session, box).get(principal.account_id)
    return {**record.to_api(), "webhookUrl": _webhook_url(request, principal.account_id)}


@router.put("/config")
async def put_config(body: ConfigBody, request: Request, principal: Manager, session: Session, box: Box,
                     temporal: Temporal, if_match: IfMatchHeader = None) -> dict[str, Any]:
    """Saved, then the account's sync schedule made to match (a Temporal that cannot be reached
    is a 503 and nothing is saved)."""
    sent = body.changes()
    version = expected_version(if_match, sent.pop("version", None))
    configs = MaverickConfigService(session, box)
    record = await configs.put(principal.account_id, sent, version)
    settings = await configs.settings(principal.account_id)
    assert settings is not None
    try:
        await MaverickSyncScheduler(temporal, _sync_queue(request)).apply(principal.account_id, settings)
    except RPCError as error:
        raise TemporalUnavailable(f"the sync schedule could not be set: {error.message}") from None
    return {**record.to_api(), "webhookUrl": _webhook_url(request, principal.account_id)}


@router.post("/sync", status_code=202)
async def sync_now(request: Request, principal: Manager, sessions: Sessions, box: Box,
                   temporal: Temporal) -> dict[str, Any]:
    """Start an inbound sync now → 202 ``{syncRunId}``; follow it at ``/sync-runs/{id}``."""
    async with sessions() as session, session.begin():  # committed before the run looks for it
        settings = await MaverickConfigService(session, box).settings(principal.account_id)
        run = await SyncRunService(session).start_manual(principal.account_id, settings)
    try:
        await MaverickSyncScheduler(temporal, _sync_queue(request)).start_now(principal.account_id, run.id)
    except RPCError as error:
        raise TemporalUnavailable(f"the sync could not be started: {error.message}") from None
    return {"syncRunId": run.id}


@router.get("/sync-runs")
async def list_sync_runs(principal: Manager, session: Session,
                         page: Annotated[Page, Depends(page_params)]) -> dict[str, Any]:
    rows, total = await SyncRunService(session).list(principal.account_id, page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


@router.get("/sync-runs/{run_id}")
async def get_sync_run(run_id: int, principal: Manager, session: Session) -> dict[str, Any]:
    return (await SyncRunService(session).get(principal.account_id, run_id)).to_api()


def _sync_queue(request: Request) -> str:
    """Syncs and webhook fetches run on the Maverick sync's own task queue (pulse.worker)."""
    settings: Settings = request.app.state.settings
    return settings.maverick_task_queue


@router.get("/ticket-type-mappings")
async def list_mappings(principal: Manager, session: Session) -> dict[str, Any]:
    rows = await MaverickMappingService(session).list(principal.account_id)
    return {"data": [row.to_api() for row in rows], "totalCount": len(rows)}


@router.post("/ticket-type-mappings", status_code=201)
async def create_mapping(body: MappingBody, principal: Manager, session: Session) -> dict[str, Any]:
    values = body.changes()
    values.pop("version", None)
    return (await MaverickMappingService(session).create(principal.account_id, values)).to_api()


@router.get("/ticket-type-mappings/{mapping_id}")
async def get_mapping(mapping_id: int, principal: Manager, session: Session) -> dict[str, Any]:
    return (await MaverickMappingService(session).get(principal.account_id, mapping_id)).to_api()


@router.put("/ticket-type-mappings/{mapping_id}")
async def replace_mapping(mapping_id: int, body: MappingBody, principal: Manager, session: Session,
                          if_match: IfMatchHeader = None) -> dict[str, Any]:
    values = body.changes()
    version = expected_version(if_match, values.pop("version", None))
    return (await MaverickMappingService(session).replace(principal.account_id, mapping_id, values, version)).to_api()


@router.delete("/ticket-type-mappings/{mapping_id}", status_code=204)
async def delete_mapping(mapping_id: int, principal: Manager, session: Session) -> Response:
    await MaverickMappingService(session).delete(principal.account_id, mapping_id)
    return Response(status_code=204)


@router.post("/webhook/{account_ref}")
async def receive_webhook(account_ref: str, request: Request, session: Session, box: Box, temporal: Temporal,
                          signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None) -> dict[str, Any]:
    """Signed by Maverick instead of a token: a bad or missing signature is a 401; a repeated
    event id is a 200 that changes nothing. A new event starts (or signals) the fetch of the
    ticket it names, which reads the current remote object and applies it."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise DomainError("a Maverick event is at most 1 MiB", code="payload_too_large", status=413)
    received = await MaverickWebhookService(session, box).receive(account_ref, body, signature,
                                                                  datetime.now(timezone.utc))
    if received.fetch_ticket_id is not None:
        try:
            await MaverickSyncScheduler(temporal, _sync_queue(request)).fetch(
                int(account_ref), received.fetch_ticket_id, received.event.id, received.event.type)
        except RPCError as error:  # not recorded either (rolled back): Maverick sends it again
            raise TemporalUnavailable(f"the change could not be taken now: {error.message}") from None
    return {"received": True, "eventId": received.event.id, "duplicate": received.duplicate}
