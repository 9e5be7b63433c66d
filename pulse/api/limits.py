"""Request limits, as one ASGI middleware in front of the app (so before authentication and
before any body is parsed):

- **Body size.** A ``Content-Length`` over the limit is answered 413 at once; a body without one
  (chunked) is read here up to the limit first, 413 past it, else handed on whole (the server
  holds a declared length to its word). Nothing is applied: the handler never saw the body.
  Attachment uploads have their own, larger limit.
- **A bearer credential.** A request to an authenticated route without one is a 401 before its
  body is read (a bad body without a token is a 401, not a 422); the token itself is checked by
  the route's authentication.
- **Rate.** Token buckets per presented credential (the bearer token's hash; no database) and per
  client address, and a much smaller one per client address for failed authentications, which
  is checked before anything else: a guesser gets 429 after a few dozen tries. Every 429 carries
  ``Retry-After``. Buckets live in the API process (each process limits on its own) and idle
  ones are dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pulse.config import Settings

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ATTACHMENT_UPLOAD = re.compile(r"^/api/tickets/[^/]+/attachments/?$")
# The API's routes that take no bearer token: the health check and the signed webhooks.
WITHOUT_TOKEN = re.compile(r"^/api/health|^/api/integrations/[^/]+/webhook")
MULTIPART_OVERHEAD = 64 * 1024
IDLE_BUCKETS = 10_000  # buckets kept before the idle ones are swept


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``rate`` per second refilling up to ``burst``; ``take`` answers the seconds to wait (0: go)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def _refilled(self, key: str, now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= IDLE_BUCKETS:
                self._sweep(now)
            bucket = self.buckets[key] = Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def wait(self, key: str, now: float) -> float:
        """Seconds until one token is there (0: there is one), without taking it."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str, now: float) -> float:
        wait = self.wait(key, now)
        if wait == 0 and self.enabled:
            self.buckets[key].tokens -= 1
        return wait

    def _sweep(self, now: float) -> None:
        full = [key for key, bucket in self.buckets.items()
                if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst]
        for key in full:
            del self.buckets[key]


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.attachment_max_bytes + MULTIPART_OVERHEAD
        self.per_token = TokenBuckets(settings.rate_per_token, settings.burst_per_token)
        self.per_address = TokenBuckets(settings.rate_per_address, settings.burst_per_address)
        self.auth_failures = TokenBuckets(settings.auth_failures_per_minute / 60, settings.auth_failure_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        address = (scope.get("client") or ("unknown", 0))[0]
        now = time.monotonic()
        wait = self.auth_failures.wait(address, now)
        if not wait:
            wait = self.per_address.take(address, now)
        credential = headers.get("authorization")
        if not wait and credential:
            wait = self.per_token.take(hashlib.sha256(credential.encode()).hexdigest(), now)
        if wait:
            await _respond(send, 429, "rate_limited", "too many requests; retry after the time in Retry-After",
                           {"Retry-After": str(max(1, math.ceil(wait)))})
            return
        limit = self._body_limit(scope)
        declared = headers.get("content-length")
        if limit and declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _respond(send, 413, "payload_too_large", f"the request body is over {limit} bytes")
            return
        if scope["path"].startswith("/api/") and not WITHOUT_TOKEN.match(scope["path"]) \
                and not (credential or "").lower().startswith("bearer "):
            await _respond(send, 401, "unauthorized", "send Authorization: Bearer <token>",
                           {"WWW-Authenticate": "Bearer"})  # before the body is read or parsed
            self.auth_failures.take(address, time.monotonic())
            return

        if limit and declared is None:  # chunked: read it all (up to the limit) before the app sees it
            body, more = await _read_up_to(receive, limit)
            if more:
                await _respond(send, 413, "payload_too_large", f"the request body is over {limit} bytes")
                return
            receive = _replay(body, receive)

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.auth_failures.take(address, time.monotonic())
            await send(message)

        await self.app(scope, receive, observed)

    def _body_limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and ATTACHMENT_UPLOAD.match(scope["path"]):
            return self.max_upload
        return self.max_body


async def _read_up_to(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body, and whether it went on past ``limit`` (then what was read is dropped)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then whatever comes (a disconnect)

    return replayed


async def _respond(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": code, "message": message, "details": []}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items())]})
    await send({"type": "http.response.body", "body": body})
