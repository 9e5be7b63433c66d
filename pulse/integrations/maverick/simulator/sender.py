"""The simulator's webhook sender: every change becomes a signed event POSTed to each target,
retried until a 2xx (as Maverick does; bounded here so a simulator never retries forever), with
the faults it was told to have (drop, duplicate, reorder, delay)."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from pulse.integrations.maverick.simulator.faults import Faults
from pulse.integrations.maverick.webhooks import SIGNATURE_HEADER, sign
from pulse.integrations.maverick.wire import WebhookEvent

MAX_ATTEMPTS = 8


@dataclass
class Target:
    url: str
    secret: str


@dataclass
class DeliveryLog:
    event_id: str
    event_type: str
    url: str
    attempts: int = 0
    status: int | None = None
    delivered: bool = False
    dropped: bool = False

    def shown(self) -> dict[str, Any]:
        return {"eventId": self.event_id, "type": self.event_type, "url": self.url, "attempts": self.attempts,
                "status": self.status, "delivered": self.delivered, "dropped": self.dropped}


@dataclass
class WebhookSender:
    faults: Faults
    targets: list[Target] = field(default_factory=list)
    log: list[DeliveryLog] = field(default_factory=list)
    retry_backoff: float = 0.2
    _queue: asyncio.Queue[WebhookEvent] | None = None
    _held: list[WebhookEvent] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _worker: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._http = httpx.AsyncClient(timeout=10)
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(t for t in [self._worker, *self._tasks] if t is not None), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def emit(self, event_type: str, data: dict[str, Any]) -> WebhookEvent:
        event = WebhookEvent(id=f"evt_{secrets.token_hex(8)}", type=event_type,
                             occurred_at=datetime.now(timezone.utc), data=data)
        if self._queue is not None and self.targets:
            self._queue.put_nowait(event)
        return event

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until every event so far was delivered or given up (held reorders excepted)."""
        async with asyncio.timeout(timeout):
            while (self._queue is not None and not self._queue.empty()) or self._tasks:
                await asyncio.sleep(0.02)

    def release_held(self) -> None:
        """Send the events held for reordering now, newest first."""
        held, self._held = self._held, []
        for event in reversed(held):
            self._dispatch(event)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            if self.faults.drop_webhooks > 0:
                self.faults.drop_webhooks -= 1
                self.log.extend(DeliveryLog(event.id, event.type, t.url, dropped=True) for t in self.targets)
                continue
            if self.faults.reorder_webhooks > 0:
                self.faults.reorder_webhooks -= 1
                self._held.append(event)
                if self.faults.reorder_webhooks == 0:
                    self.release_held()
                continue
            self._dispatch(event)
            if self.faults.duplicate_webhooks > 0:
                self.faults.duplicate_webhooks -= 1
                self._dispatch(event)

    def _dispatch(self, event: WebhookEvent) -> None:
        body = json.dumps(event.to_wire(), separators=(",", ":")).encode()
        for target in list(self.targets):
            entry = DeliveryLog(event.id, event.type, target.url)
            self.log.append(entry)
            task = asyncio.create_task(self._deliver(target, body, entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, target: Target, body: bytes, entry: DeliveryLog) -> None:
        assert self._http is not None
        backoff = self.retry_backoff
        for _ in range(MAX_ATTEMPTS):
            if self.faults.webhook_latency_ms:
                await asyncio.sleep(self.faults.webhook_latency_ms / 1000)
            entry.attempts += 1
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: sign(target.secret, body, int(datetime.now(timezone.utc).timestamp()))}
            try:
                response = await self._http.post(target.url, content=body, headers=headers)
                entry.status = response.status_code
                if response.is_success:
                    entry.delivered = True
                    return
            except httpx.TransportError:
                entry.status = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
