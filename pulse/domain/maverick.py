"""Maverick mappings, pure: statuses and priorities between the two systems, the integration
config's rules, and where an unmapped category lands. Maverick values are plain strings here
(the wire models live in ``pulse.integrations.maverick``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pulse.domain.errors import ValidationFailed
from pulse.domain.records import Record
from pulse.domain.settings_records import http_url, mask_secret
from pulse.domain.ticket_fields import RowId
from pulse.domain.tickets import Priority, TicketStatus

UNMAPPED_TYPE_NAME = "Unmapped Maverick Tickets"
UNMAPPED_TYPE_DESCRIPTION = "Maverick tickets whose category has no ticket-type mapping yet"
EXTERNAL_SOURCE = "maverick"

MAVERICK_STATUSES = ("new", "assigned", "in_review", "pending_merchant", "resolved", "closed", "cancelled")
DEFAULT_STATUS_MAPPING: dict[str, TicketStatus] = {
    "new": TicketStatus.OPEN,
    "assigned": TicketStatus.IN_PROGRESS,
    "in_review": TicketStatus.IN_PROGRESS,
    "pending_merchant": TicketStatus.WAITING_CUSTOMER,
    "resolved": TicketStatus.RESOLVED,
    "closed": TicketStatus.CLOSED,
    "cancelled": TicketStatus.CLOSED,
}
PRIORITY_FROM_MAVERICK: dict[str, Priority] = {
    "critical": Priority.URGENT, "high": Priority.HIGH, "normal": Priority.MEDIUM, "low": Priority.LOW,
}
PRIORITY_TO_MAVERICK: dict[Priority, str] = {pulse: maverick for maverick, pulse in PRIORITY_FROM_MAVERICK.items()}


class SyncDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BIDIRECTIONAL = "bidirectional"

    @property
    def pulls(self) -> bool:
        return self is not SyncDirection.OUTBOUND

    @property
    def pushes(self) -> bool:
        return self is not SyncDirection.INBOUND


def webhook_path(account_id: int) -> str:
    return f"/api/integrations/maverick/webhook/{account_id}"


def status_mapping(overrides: Mapping[str, str] | None) -> dict[str, TicketStatus]:
    """The account's full mapping: the defaults with its overrides on top."""
    return {**DEFAULT_STATUS_MAPPING, **{key: TicketStatus(value) for key, value in (overrides or {}).items()}}


def pulse_status(maverick_status: str, overrides: Mapping[str, str] | None) -> TicketStatus:
    """A status Maverick added after this mapping was written counts as ``open`` (work to look at)."""
    return status_mapping(overrides).get(maverick_status, TicketStatus.OPEN)


def maverick_status(status: TicketStatus, overrides: Mapping[str, str] | None,
                    current: str | None = None) -> str | None:
    """The Maverick status to push for a Pulse status: the current remote one when it already maps
    there (``assigned`` and ``in_review`` both mean in_progress: keep whichever Maverick has), else
    the first Maverick status (in the contract's order) mapped to it; None when none is."""
    mapping = status_mapping(overrides)
    if current is not None and mapping.get(current) == status:
        return current
    return next((remote for remote in MAVERICK_STATUSES if mapping.get(remote) == status), None)


def pulse_priority(maverick_priority: str | None) -> Priority:
    return PRIORITY_FROM_MAVERICK.get(maverick_priority or "", Priority.MEDIUM)


def check_status_mapping(sent: Any) -> dict[str, str]:
    """The overrides as stored; a 422 naming ``statusMapping.<key>`` for each bad entry."""
    if not isinstance(sent, dict):
        raise ValidationFailed("statusMapping must be an object {maverickStatus: pulseStatus}",
                               details=[{"field": "statusMapping", "message": "must be an object"}])
    details = []
    pulse_values = {status.value for status in TicketStatus}
    for key, value in sent.items():
        if key not in MAVERICK_STATUSES:
            details.append({"field": f"statusMapping.{key}",
                            "message": f"not a Maverick status; one of {', '.join(MAVERICK_STATUSES)}"})
        elif value not in pulse_values:
            details.append({"field": f"statusMapping.{key}",
                            "message": f"must be a Pulse status: {', '.join(sorted(pulse_values))}"})
    if details:
        raise ValidationFailed("invalid statusMapping", details=details)
    return {key: str(value) for key, value in sent.items()}


# -- the integration's config ------------------------------------------------------------------

SECRET_FIELDS = ("api_key", "webhook_secret")


class MaverickSettings(BaseModel):
    """The account's effective config with its secrets in clear (``SecretStr``): what a PUT must
    leave valid, and what the sync and the webhook endpoint read."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_url: str | None = Field(default=None, max_length=2000)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=1000)
    webhook_secret: SecretStr | None = Field(default=None, min_length=8, max_length=1000)
    auto_sync: bool = True
    sync_interval_minutes: int = Field(default=15, ge=1, le=1440)
    sync_direction: SyncDirection = SyncDirection.BIDIRECTIONAL
    default_assignee_id: RowId | None = None
    default_team_id: RowId | None = None
    sync_internal_notes: bool = False
    status_mapping: dict[str, str] = {}  # the account's overrides of DEFAULT_STATUS_MAPPING

    @field_validator("api_url")
    @classmethod
    def api_url_is_http(cls, value: str | None) -> str | None:
        return http_url(value) if value is not None else None

    @model_validator(mode="after")
    def enabled_needs_connection(self) -> "MaverickSettings":
        if self.enabled:
            missing = [name for name in ("api_url", "api_key", "webhook_secret") if getattr(self, name) is None]
            if missing:
                raise ValueError("an enabled integration needs " + ", ".join(to_camel(m) for m in missing))
        return self

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None


DEFAULT_SETTINGS = MaverickSettings()


class MaverickConfigRecord(Record):
    """What ``GET /api/integrations/maverick/config`` shows (``webhookUrl`` is added by the endpoint,
    which knows the address it is reached at)."""

    enabled: bool
    api_url: str | None
    api_key: str | None  # masked
    webhook_secret: str | None  # masked
    auto_sync: bool
    sync_interval_minutes: int
    sync_direction: SyncDirection
    default_assignee_id: int | None
    default_team_id: int | None
    sync_internal_notes: bool
    status_mapping: dict[str, TicketStatus]
    version: int
    updated_at: datetime | None

    @classmethod
    def of(cls, settings: MaverickSettings, version: int, updated_at: datetime | None) -> "MaverickConfigRecord":
        return cls(**{**settings.model_dump(exclude={"api_key", "webhook_secret", "status_mapping"}),
                      "api_key": mask_secret(settings.secret("api_key")),
                      "webhook_secret": mask_secret(settings.secret("webhook_secret")),
                      "status_mapping": status_mapping(settings.status_mapping),
                      "version": version, "updated_at": updated_at})


class CategoryMappingRecord(Record):
    id: int
    maverick_category_id: int
    maverick_category_name: str | None
    pulse_ticket_type_id: int | None
    pulse_category_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class SyncRunRecord(Record):
    id: int
    direction: str
    trigger: str
    status: str  # running | succeeded | partial | failed | skipped
    started_at: datetime
    finished_at: datetime | None
    pulled: int
    pushed: int
    created: int
    updated: int
    skipped: list[dict[str, Any]]
    errors: list[dict[str, Any]]
