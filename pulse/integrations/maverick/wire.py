"""Maverick's objects as its API sends them (``../shared/spec/maverick-api.md``), typed.

Only this package reads or writes Maverick's JSON: the client parses responses into these models
and the simulator serialises its state through them. Unknown fields are ignored (a newer Maverick
may add some); ids are strings and cursors opaque, whatever they look like.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")
# Ids are opaque strings; a server that sends a number means the same id as its digits.
Id = Annotated[str, BeforeValidator(lambda value: str(value) if isinstance(value, int) and not isinstance(value, bool) else value)]

AuthorType = Literal["merchant", "agent", "system", "integration"]
MAVERICK_STATUSES = ("new", "assigned", "in_review", "pending_merchant", "resolved", "closed", "cancelled")
MAVERICK_PRIORITIES = ("critical", "high", "normal", "low")
WEBHOOK_EVENT_TYPES = ("ticket.created", "ticket.updated", "ticket.status_changed", "comment.created",
                       "document.created")


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; extra fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Author(Wire):
    type: str
    name: str | None = None


class Category(Wire):
    id: int
    name: str


class MaverickTicket(Wire):
    id: Id
    merchant_id: Id | None = None
    merchant_name: str | None = None
    subject: str
    body: str | None = None
    category_id: int | None = None
    status: str
    priority: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    last_changed_by: Author | None = None


class MaverickComment(Wire):
    id: Id
    body: str
    internal: bool = False
    author: Author | None = None
    created_at: datetime
    # Not in the listing contract's field list, but every object has them; optional here.
    updated_at: datetime | None = None
    version: int | None = None
    external_id: Id | None = None


class MaverickDocument(Wire):
    id: Id
    file_name: str
    content_type: str = "application/octet-stream"
    size: int
    sha256: str
    created_at: datetime
    updated_at: datetime | None = None
    version: int | None = None
    external_id: Id | None = None


class Page(Wire, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


class WebhookEvent(Wire):
    id: Annotated[Id, Field(min_length=1, max_length=200)]
    type: str = Field(min_length=1, max_length=64)
    occurred_at: datetime | None = None
    data: dict[str, Any] = {}

    def ticket_id(self) -> str | None:
        """The Maverick ticket the event is about (an event only says *what* changed)."""
        for key in ("ticketId", "ticket_id"):
            if isinstance(self.data.get(key), (str, int)):
                return str(self.data[key])
        ticket = self.data.get("ticket")
        if isinstance(ticket, dict) and isinstance(ticket.get("id"), (str, int)):
            return str(ticket["id"])
        if self.type.startswith("ticket.") and isinstance(self.data.get("id"), (str, int)):
            return str(self.data["id"])
        return None


class ErrorBody(Wire):
    code: str
    message: str = ""
