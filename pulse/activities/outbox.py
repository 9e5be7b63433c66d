"""The outbox's consumers: regular activities (retries with backoff), one call per
(event, consumer), idempotent by event id — the delivery row is claimed in the same transaction
as the consumer's own writes, so a retry after a crash does nothing twice."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity

from pulse.activities.heartbeat import heartbeating
from pulse.db import SessionFactory
from pulse.domain.commands import DeliveryCommand
from pulse.domain.outbox import IN_APP_MENTIONS, MAVERICK_PUSH, NOTIFY_PREFIX
from pulse.domain.tickets import format_ticket_number
from pulse.notifications.delivery import NotificationDelivery
from pulse.repositories.ticket_store import OutboxStore
from pulse.secretbox import SecretBox
from pulse.services.maverick_push import MaverickPush


HEARTBEAT_EVERY_SECONDS = 2


class OutboxActivities:
    def __init__(self, sessions: SessionFactory, notifications: NotificationDelivery | None = None,
                 maverick: MaverickPush | None = None) -> None:
        self.sessions = sessions
        self.notifications = notifications or NotificationDelivery(sessions)
        self.maverick = maverick or MaverickPush(sessions, SecretBox(None))

    @activity.defn
    async def deliver_event(self, command: DeliveryCommand) -> bool:
        """Hand one event to one consumer; False when it had been delivered already."""
        async with heartbeating(HEARTBEAT_EVERY_SECONDS):
            return await self._deliver(command)

    async def _deliver(self, command: DeliveryCommand) -> bool:
        delivery = command.delivery
        if delivery.consumer.startswith(NOTIFY_PREFIX):
            return await self._notify(delivery.event_id, delivery.consumer.removeprefix(NOTIFY_PREFIX))
        if delivery.consumer == MAVERICK_PUSH:
            return await self.maverick.deliver(delivery.event_id)
        async with self.sessions() as session, session.begin():
            store = OutboxStore(session)
            if not await store.claim(delivery.event_id, delivery.consumer):
                return False
            event = await store.event(delivery.event_id)
            if event is None:
                return True
            if delivery.consumer == IN_APP_MENTIONS:
                await self._notify_mentions(store, event)
            return True

    async def _notify(self, event_id: int, channel: str) -> bool:
        """One channel of a notifying event: each target's attempt is recorded by the delivery,
        which is idempotent per (event, channel, target); a target that failed raises, so the
        activity is retried with backoff for the failed targets only."""
        await self.notifications.deliver(event_id, channel)
        return True

    @staticmethod
    async def _notify_mentions(store: OutboxStore, event: Any) -> None:
        """An in-app notification for each mentioned user of the ticket's account."""
        mentioned = [int(user_id) for user_id in event.data.get("mentions") or []]
        users = await store.active_users(event.account_id, mentioned)
        number = event.data.get("ticketNumber")
        title = f"You were mentioned on {number or format_ticket_number(event.ticket_id)}"
        await store.notify([{
            "account_id": event.account_id, "user_id": user_id, "ticket_id": event.ticket_id, "event_id": event.id,
            "kind": "mention", "title": title, "body": None,
            "data": {"commentId": event.data.get("commentId"), "byUserId": event.data.get("userId")},
        } for user_id in users])

    def all(self) -> list[Callable[..., Any]]:
        return [self.deliver_event]
