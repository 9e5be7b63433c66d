"""Plain read models of an account's settings: API tokens, reference data (users, teams, ticket
types and categories) and SLA policies and calendars. Services return them; routers render them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Mapping
from urllib.parse import urlsplit

from pulse.domain.records import Record
from pulse.domain.sla import PolicyConditions
from pulse.domain.tickets import Priority, TicketStatus


class TokenRecord(Record):
    """An API token as listed: never its secret."""

    id: int
    name: str
    permissions: list[str]
    user_id: int | None
    token_prefix: str
    created_at: datetime | None
    last_used_at: datetime | None


class AuditRecord(Record):
    """One audit-log entry: who (user and token), what (action on a target), when."""

    id: int
    actor_user_id: int | None
    actor_token_id: int | None
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, Any]
    created_at: datetime


class UserRecord(Record):
    id: int
    name: str
    email: str | None
    phone: str | None
    role: str
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


MASK = "****"


def mask_secret(secret: str | None) -> str | None:
    """``****`` + the last four characters; only ``****`` for a secret too short to spare four."""
    if not secret:
        return None
    return MASK + secret[-4:] if len(secret) >= 8 else MASK


def write_only_secret(sent: Mapping[str, Any], field: str, stored: str | None) -> str | None:
    """The secret a settings write leaves: the stored one when ``field`` is left out or sent back
    as the masked value a GET showed; else what was sent (``None`` clears it). Notification
    settings and the Maverick config keep their secrets by this one rule."""
    if field not in sent:
        return stored
    value = sent[field]
    if stored is not None and value in (mask_secret(stored), MASK):
        return stored
    return value


def http_url(value: str) -> str:
    """A settings field that must be an http(s) URL (a ValueError otherwise, for pydantic)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL")
    return value


class TeamRecord(Record):
    id: int
    name: str
    description: str | None
    manager_user_id: int | None
    member_ids: list[int] = []
    slack_webhook_url: str | None = None
    version: int

    def to_api(self) -> dict[str, Any]:
        """The team's Slack webhook URL is a secret (anyone holding it can post to the channel):
        shown as ``****`` + its last four characters, like the account's notification settings."""
        body = super().to_api()
        body["slackWebhookUrl"] = mask_secret(body.get("slackWebhookUrl"))
        return body
    created_at: datetime
    updated_at: datetime


class NamedRecord(Record):
    """A ticket type or a ticket category."""

    id: int
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class TicketTypeRecord(NamedRecord):
    """A ticket type: with auto-assignment on, a new ticket of this type goes to the next member
    of ``rotation_id``."""

    auto_assignment_enabled: bool = False
    rotation_id: int | None = None


class SlaCalendarRecord(Record):
    id: int
    name: str
    timezone: str
    weekly_hours: dict[str, list[list[str]]]
    holidays: list[date]
    holiday_country: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class SlaPolicyRecord(Record):
    """A priority policy (``priority`` set) or a conditional one (``conditions`` and ``order`` set)."""

    id: int
    name: str
    priority: Priority | None
    conditions: PolicyConditions | None
    order: int | None
    first_response_minutes: int
    resolution_minutes: int
    at_risk_percent: int
    calendar_id: int | None
    pause_statuses: list[TicketStatus]
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
