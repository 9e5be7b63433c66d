"""The in-app stream of one API process: one PostgreSQL ``LISTEN`` connection, fanned out to the
process's own SSE subscribers by (account, user).

Every new ``notifications`` row is published on ``pulse_notifications`` by a trigger, in the
inserting transaction (so a listener hears of it when it commits, never before). Each API process
listens on its own connection; a process with a subscriber for that user reads the row and hands
it to each of them. So any number of API processes each serve their own subscribers.

A subscriber never loses a notification to a gap: it may resume with ``Last-Event-ID`` (its
notifications above that id come first), a listener that lost its connection makes every
subscriber re-read what it missed once it is back, and a subscriber too slow to keep up with its
queue re-reads from the database instead of dropping. Ids already sent are not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any, AsyncIterator

import psycopg

from pulse.db import SessionFactory
from pulse.domain.errors import DomainError
from pulse.notifications.messages import InAppNotification
from pulse.repositories.notifications import InAppNotificationRepository

log = logging.getLogger("pulse.notifications.stream")

CHANNEL = "pulse_notifications"
LISTENER_NAME = "pulse-notification-listener"  # application_name of the LISTEN connection
CATCH_UP_LIMIT = 500

_RESYNC = object()  # re-read from the database what may have been missed
_CLOSE = object()


def libpq_url(url: str) -> str:
    """A psycopg connection string from a SQLAlchemy or libpq URL."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def sessions_url(sessions: SessionFactory) -> str | None:
    """The database URL of a session factory's engine (password included)."""
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    return url.render_as_string(hide_password=False) if url is not None else None


class Subscription:
    """One SSE client: a queue the hub fills, read as an async iterator of notification objects."""

    def __init__(self, hub: "NotificationHub", account_id: int, user_id: int, cursor: int,
                 catch_up_first: bool, queue_size: int) -> None:
        self.hub = hub
        self.key = (account_id, user_id)
        self.cursor = cursor  # the highest id this subscriber has been sent (or had before it came)
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._sent: set[int] = set()
        self._sent_order: deque[int] = deque()
        self._closed = False
        if catch_up_first:
            self.queue.put_nowait(_RESYNC)

    def push(self, item: Any) -> None:
        if self._closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # too slow: forget the queue, re-read from the database
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_RESYNC)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hub._remove(self)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(_CLOSE)

    def _fresh(self, notification: dict[str, Any]) -> bool:
        notification_id = int(notification["id"])
        if notification_id in self._sent:
            return False
        self._sent.add(notification_id)
        self._sent_order.append(notification_id)
        if len(self._sent_order) > 10_000:
            self._sent.discard(self._sent_order.popleft())
        self.cursor = max(self.cursor, notification_id)
        return True

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSE:
                    return
                if item is _RESYNC:
                    while True:
                        batch = await self.hub._after(self.key, self.cursor)
                        for notification in batch:
                            fresh = self._fresh(notification)
                            self.cursor = max(self.cursor, int(notification["id"]))
                            if fresh:
                                yield notification
                        if len(batch) < CATCH_UP_LIMIT:
                            break
                elif self._fresh(item):
                    yield item
        finally:
            self.close()


class NotificationHub:
    """Started lazily by the first subscriber; ``stop()`` at the app's shutdown."""

    def __init__(self, database_url: str, sessions: SessionFactory, *, keepalive_seconds: float = 30.0,
                 queue_size: int = 256, ready_timeout: float = 10.0) -> None:
        self.database_url = libpq_url(database_url)
        self.sessions = sessions
        self.keepalive_seconds = keepalive_seconds
        self.queue_size = queue_size
        self.ready_timeout = ready_timeout
        self._subscribers: dict[tuple[int, int], set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    async def subscribe(self, account_id: int, user_id: int, *, after_id: int | None = None) -> Subscription:
        """Register a subscriber; it gets every notification of the user committed from now on,
        and first those above ``after_id`` when given (``Last-Event-ID``)."""
        await self._ensure_listening()
        subscription = Subscription(self, account_id, user_id, cursor=after_id or 0,
                                    catch_up_first=after_id is not None, queue_size=self.queue_size)
        self._subscribers.setdefault((account_id, user_id), set()).add(subscription)
        if after_id is None:  # registered first, so nothing committed after this read is missed
            async with self.sessions() as session:
                subscription.cursor = await InAppNotificationRepository(session).latest_id(account_id, user_id)
        return subscription

    async def stop(self) -> None:
        self._stopping = True
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                subscription.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        self._ready.clear()

    def _remove(self, subscription: Subscription) -> None:
        subscriptions = self._subscribers.get(subscription.key)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscribers[subscription.key]

    async def _ensure_listening(self) -> None:
        if self._stopping:
            raise DomainError("the server is shutting down; reconnect", code="unavailable", status=503)
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="pulse-notification-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
        except asyncio.TimeoutError:
            raise DomainError("the notification stream is not available right now; retry shortly",
                              code="unavailable", status=503) from None

    async def _listen(self) -> None:
        backoff = 0.5
        connected_before = False
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.database_url, autocommit=True, application_name=LISTENER_NAME) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    backoff = 0.5
                    if connected_before:  # notifications may have been published while away
                        self._resync_all()
                    connected_before = True
                    while not self._stopping:
                        async for notify in connection.notifies(timeout=self.keepalive_seconds):
                            await self._dispatch(notify.payload)
                        await connection.execute("SELECT 1")  # a dead connection fails here
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._ready.clear()
                if self._stopping:
                    return
                log.warning("notification listener lost its connection (%s); reconnecting in %.1fs",
                            type(error).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._ready.clear()

    def _resync_all(self) -> None:
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.push(_RESYNC)

    async def _dispatch(self, payload: str) -> None:
        try:
            published = json.loads(payload)
            key = (int(published["accountId"]), int(published["userId"]))
            notification_id = int(published["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s payload", CHANNEL)
            return
        subscriptions = self._subscribers.get(key)
        if not subscriptions:
            return
        try:
            async with self.sessions() as session:
                row = await InAppNotificationRepository(session).get(notification_id)
                notification = InAppNotification.of(row).to_api() if row is not None else None
        except Exception:  # the database hiccuped: let the subscribers re-read instead
            log.exception("could not read notification %s; subscribers will re-read", notification_id)
            for subscription in list(subscriptions):
                subscription.push(_RESYNC)
            return
        if notification is not None:
            for subscription in list(subscriptions):
                subscription.push(notification)

    async def _after(self, key: tuple[int, int], after_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await InAppNotificationRepository(session).after(key[0], key[1], after_id, limit=CATCH_UP_LIMIT)
            return [InAppNotification.of(row).to_api() for row in rows]
