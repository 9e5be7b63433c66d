"""Notifications: the account's channel settings (``/api/settings/notifications``, manageSettings;
secrets write-only), the caller's in-app notifications with their live SSE stream, and the record
of every delivery attempt (manageSettings).

In-app notifications belong to the token's user and need readSupport (like every read)."""

from __future__ import annotations

import json
from typing import Annotated, Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import Field
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from pulse.api.deps import IfMatchHeader, Manager, Reader, Session
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import Body
from pulse.domain.ids import MAX_ID
from pulse.notifications.stream import NotificationHub
from pulse.services.notifications import (
    DeliveryService,
    InAppNotificationService,
    NotificationSettingsService,
    notification_user,
)

settings_router = APIRouter(prefix="/api/settings/notifications", tags=["notifications"])
router = APIRouter(prefix="/api/notifications", tags=["notifications"])

SSE_PING_SECONDS = 15


# -- settings ---------------------------------------------------------------------------------------

class EmailSettingsBody(Body):
    smtp_host: str | None = Field(default=None, max_length=255)
    smtp_port: int | None = None
    starttls: bool | None = None
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1000,
                                 description="write-only; omit (or send the masked value) to keep it")
    from_address: str | None = Field(default=None, max_length=320)


class SmsSettingsBody(Body):
    gateway_url: str | None = Field(default=None, max_length=2000)
    account_sid: str | None = Field(default=None, max_length=100)
    auth_token: str | None = Field(default=None, max_length=500,
                                   description="write-only; omit (or send the masked value) to keep it")
    from_number: str | None = Field(default=None, max_length=50)


class SlackSettingsBody(Body):
    webhook_url: str | None = Field(default=None, max_length=2000,
                                    description="write-only; omit (or send the masked value) to keep it")


class NotificationSettingsBody(Body):
    """A channel left out keeps its settings; ``null`` removes them (the channel is then skipped)."""

    email: EmailSettingsBody | None = None
    sms: SmsSettingsBody | None = None
    slack: SlackSettingsBody | None = None
    version: int | None = None


@settings_router.get("")
async def get_notification_settings(principal: Manager, session: Session) -> dict:
    """The account's channels; secrets show as ``****`` + their last four characters."""
    return await NotificationSettingsService(session).get(principal.account_id)


@settings_router.put("")
async def put_notification_settings(body: NotificationSettingsBody, principal: Manager, session: Session,
                                    if_match: IfMatchHeader = None) -> dict:
    sent: dict[str, dict[str, Any] | None] = {}
    for channel in ("email", "sms", "slack"):
        if channel in body.model_fields_set:
            value = getattr(body, channel)
            sent[channel] = value.model_dump(exclude_unset=True) if value is not None else None
    version = expected_version(if_match, body.version)
    return await NotificationSettingsService(session).put(principal.account_id, sent, version)


# -- deliveries (before /{notification_id}) -----------------------------------------------------------

@router.get("/deliveries")
async def list_deliveries(
    principal: Manager, session: Session, page: Annotated[Page, Depends(page_params)],
    ticket_id: Annotated[int | None, Query(alias="ticketId", ge=1, le=MAX_ID)] = None,
    channel: Literal["email", "sms", "slack", "in_app"] | None = None,
    status: Literal["pending", "sent", "failed", "skipped"] | None = None,
) -> dict:
    """Every delivery attempt record, newest first: one per (event, channel, target)."""
    rows, total = await DeliveryService(session).list(principal.account_id, ticket_id=ticket_id, channel=channel,
                                                      status=status, page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


# -- in-app -------------------------------------------------------------------------------------------

@router.get("")
async def list_notifications(principal: Reader, session: Session, page: Annotated[Page, Depends(page_params)],
                             unread: bool | None = None) -> dict:
    """The caller's in-app notifications, newest first; ``unread=true`` only the unread ones."""
    rows, total = await InAppNotificationService(session).list(principal, unread=unread, page=page.page,
                                                                page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


@router.get("/stream", response_class=EventSourceResponse, responses={
    200: {"description": "a stream of server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream_notifications(
    request: Request, principal: Reader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Server-sent events: ``event: notification`` with the notification object as ``data`` (and
    its id as the event id) for each new notification of the caller, as it is committed. A
    client that reconnects with ``Last-Event-ID`` first gets what it missed."""
    user_id = notification_user(principal)
    after_id = int(last_event_id) if last_event_id and last_event_id.strip().isascii() and last_event_id.strip().isdigit() else None
    hub: NotificationHub = request.app.state.notification_hub
    subscription = await hub.subscribe(principal.account_id, user_id, after_id=after_id)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for notification in subscription:
            yield {"event": "notification", "id": str(notification["id"]),
                   "data": json.dumps(notification, separators=(",", ":"))}

    return EventSourceResponse(events(), ping=SSE_PING_SECONDS, headers={"Cache-Control": "no-store"},
                               background=BackgroundTask(subscription.close))


@router.post("/{notification_id}/read")
async def mark_notification_read(notification_id: int, principal: Reader, session: Session) -> dict:
    """Mark one of the caller's notifications read; answers the notification. Idempotent."""
    return (await InAppNotificationService(session).mark_read(principal, notification_id)).to_api()
