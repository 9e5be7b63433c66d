"""Maverick: the client of its API, its webhook signatures, and its objects as typed models.

The rest of Pulse imports from here only (an import-linter contract keeps ``wire`` and the
simulator to this package), so a difference in the real API is a change in this package.
"""

from pulse.integrations.maverick.client import (
    MaverickClient,
    MaverickError,
    MaverickProtocolError,
    MaverickUnavailable,
    NotFoundAtMaverick,
    RetryPolicy,
    VersionMismatch,
)
from pulse.integrations.maverick.webhooks import BadEvent, BadSignature, SIGNATURE_HEADER, parse_event, sign, verify
from pulse.integrations.maverick.wire import (
    MAVERICK_PRIORITIES,
    MAVERICK_STATUSES,
    Category,
    MaverickComment,
    MaverickDocument,
    MaverickTicket,
    Page,
    WebhookEvent,
)

__all__ = [
    "MaverickClient", "MaverickError", "MaverickProtocolError", "MaverickUnavailable", "NotFoundAtMaverick",
    "RetryPolicy", "VersionMismatch", "BadEvent", "BadSignature", "SIGNATURE_HEADER", "parse_event", "sign",
    "verify", "MAVERICK_PRIORITIES", "MAVERICK_STATUSES", "Category", "MaverickComment", "MaverickDocument",
    "MaverickTicket", "Page", "WebhookEvent",
]
