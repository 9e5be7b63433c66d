"""Notification settings (secrets write-only), a user's in-app notifications, and the delivery
records. Services use the request's session; the request owns the transaction."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Forbidden, NotFound, VersionConflict
from pulse.notifications.messages import DeliveryRecord, InAppNotification
from pulse.notifications.settings import CONFIGURED_CHANNELS, AccountChannels, merge_channel
from pulse.repositories.notifications import (
    DeliveryRepository,
    InAppNotificationRepository,
    NotificationSettingsRepository,
)
from pulse.services.auth import Principal


def notification_user(principal: Principal) -> int:
    """In-app notifications belong to a user: a token without one has none."""
    if principal.user_id is None:
        raise Forbidden("this token belongs to no user, and in-app notifications are per user; "
                        "use a user's token", code="no_user")
    return principal.user_id


class NotificationSettingsService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.settings = NotificationSettingsRepository(session)

    async def get(self, account_id: int) -> dict[str, Any]:
        row = await self.settings.get(account_id)
        return self._render(row)

    async def put(self, account_id: int, sent: dict[str, dict[str, Any] | None], version: int | None) -> dict[str, Any]:
        """``sent``: the channels the body named (snake_case fields as sent; None clears a
        channel). A channel left out keeps its settings; in a channel, a secret left out (or sent
        back masked) keeps the stored secret; other fields are replaced."""
        row = await self.settings.get(account_id, for_update=True)
        current = row.version if row is not None else 0
        if version is not None and version != current:
            raise VersionConflict(f"the notification settings are at version {current}, not {version}; "
                                  "GET them and try again")
        channels = {channel: merge_channel(channel, sent[channel], getattr(row, channel) if row else None)
                    for channel in CONFIGURED_CHANNELS if channel in sent}
        if row is None or channels:
            row = await self.settings.save(account_id, channels)
        return self._render(row)

    @staticmethod
    def _render(row: Any) -> dict[str, Any]:
        if row is None:
            return {**AccountChannels().shown(), "version": 0, "updatedAt": None}
        shown = AccountChannels.from_stored(row.email, row.sms, row.slack).shown()
        return {**shown, "version": row.version, "updatedAt": row.updated_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")}


class InAppNotificationService:
    def __init__(self, session: AsyncSession) -> None:
        self.notifications = InAppNotificationRepository(session)

    async def list(self, principal: Principal, *, unread: bool | None, page: int,
                   page_size: int) -> tuple[list[InAppNotification], int]:
        rows, total = await self.notifications.list(principal.account_id, notification_user(principal),
                                                    unread=unread, page=page, page_size=page_size)
        return [InAppNotification.of(row) for row in rows], total

    async def mark_read(self, principal: Principal, notification_id: int) -> InAppNotification:
        row = await self.notifications.mark_read(principal.account_id, notification_user(principal), notification_id)
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        return InAppNotification.of(row)


class DeliveryService:
    def __init__(self, session: AsyncSession) -> None:
        self.deliveries = DeliveryRepository(session)

    async def list(self, account_id: int, *, ticket_id: int | None, channel: str | None, status: str | None,
                   page: int, page_size: int) -> tuple[list[DeliveryRecord], int]:
        rows, total = await self.deliveries.list(account_id, ticket_id=ticket_id, channel=channel, status=status,
                                                 page=page, page_size=page_size)
        return [DeliveryRecord.model_validate(row) for row in rows], total
