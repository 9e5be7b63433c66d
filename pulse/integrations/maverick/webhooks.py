"""Maverick's webhook signature: ``X-Maverick-Signature: t=<unix seconds>,v1=<hex>`` where
``v1 = HMAC_SHA256(webhookSecret, "<t>.<raw body>")``. Signing (the simulator) and verifying
(Pulse's endpoint) are one piece of code, so they cannot drift apart.

Verifying accepts several ``v1`` values (a sender rotating its secret signs with both) and
compares in constant time; a timestamp further than ``tolerance`` from now either way is refused
(a replayed capture is useless after five minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pulse.integrations.maverick.wire import WebhookEvent

SIGNATURE_HEADER = "X-Maverick-Signature"
TOLERANCE_SECONDS = 300


class BadSignature(Exception):
    """Missing, malformed, stale or wrong signature; the message says which (never the secret)."""


class BadEvent(Exception):
    """Correctly signed, but not an event this contract describes."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str | None, body: bytes, now: datetime, *,
           tolerance_seconds: int = TOLERANCE_SECONDS) -> None:
    """Raises :class:`BadSignature` unless ``header`` signs ``body`` with ``secret`` recently."""
    if not header:
        raise BadSignature(f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise BadSignature("the signature's timestamp is not a number") from None
        elif key == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise BadSignature(f"the {SIGNATURE_HEADER} header needs t=<unix seconds> and v1=<hex>")
    if abs(now.timestamp() - timestamp) > tolerance_seconds:
        raise BadSignature(f"the signature's timestamp is more than {tolerance_seconds // 60} minutes "
                           "from now (replayed, or the sender's clock is off)")
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise BadSignature("the signature does not match the body (wrong webhook secret, or the body was altered)")


def parse_event(body: bytes) -> WebhookEvent:
    try:
        payload: Any = json.loads(body)
        return WebhookEvent.model_validate(payload)
    except (ValueError, ValidationError) as error:
        raise BadEvent(f"not a Maverick event: {type(error).__name__}") from None
