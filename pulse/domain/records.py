"""Plain read models of what Pulse stores: what activities return and the API renders.

They are pydantic models with snake_case names; the API renders them in camelCase.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pulse.domain.tickets import AuthorType, Priority, TicketSource, TicketStatus, format_ticket_number


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# Stored, not shown: what ``Ticket.to_api`` leaves out.
TICKET_INTERNAL_FIELDS = ("account_id", "number", "deleted_at", "write_sequence", "status_changed_at")


class Ticket(Record):
    id: int
    account_id: int
    number: int
    subject: str
    description: str | None = None
    status: TicketStatus
    priority: Priority
    version: int
    assigned_to_user_id: int | None = None
    assigned_to_team_id: int | None = None
    type_id: int | None = None
    category_id: int | None = None
    tags: list[str] = []
    requester_name: str | None = None
    requester_email: str | None = None
    requester_phone: str | None = None
    source: TicketSource = TicketSource.API
    sla_policy_id: int | None = None
    sla_status: str | None = None
    sla_first_response_due: datetime | None = None
    sla_first_response_met: bool | None = None
    sla_resolution_due: datetime | None = None
    sla_resolution_met: bool | None = None
    sla_breached_at: datetime | None = None
    sla_paused_at: datetime | None = None
    sla_total_paused_time: int = 0
    first_response_time: int | None = None
    resolution_time: int | None = None
    response_count: int = 0
    internal_note_count: int = 0
    attachment_count: int = 0
    reopen_count: int = 0
    escalation_count: int = 0
    escalation_level: int = 0
    created_at: datetime
    updated_at: datetime
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    last_customer_response_at: datetime | None = None
    created_by: int | None = None
    custom_fields: dict[str, Any] = {}
    external_source: str | None = None
    external_ticket_id: str | None = None
    merged_into_ticket_id: int | None = None
    deleted_at: datetime | None = None
    last_reopened_at: datetime | None = None  # the start of the current SLA cycle, after a reopen
    write_sequence: int = 0  # every committed write of the ticket, SLA moves included (internal)
    status_changed_at: datetime | None = None  # when it entered its status (time_in_status rules; internal)

    @property
    def ticket_number(self) -> str:
        return format_ticket_number(self.number)

    def to_api(self) -> dict[str, Any]:
        body = super().to_api()
        for internal in TICKET_INTERNAL_FIELDS:
            body.pop(to_camel(internal))
        body["ticketNumber"] = self.ticket_number
        return body


# (field, API name) of what a ticket shows, in ``Ticket.to_api``'s order.
_TICKET_API_FIELDS = tuple((name, to_camel(name)) for name in Ticket.model_fields if name not in TICKET_INTERNAL_FIELDS)


def ticket_api_values(values: dict[str, Any]) -> dict[str, Any]:
    """What ``Ticket.model_validate(values).to_api()`` shows, from a loaded row's values as they
    are (datetimes and enums unconverted): encoded with pydantic-core it gives the same JSON, at a
    fifth of the CPU (no record is validated and dumped). ``values`` holds every field."""
    body = {api_name: values[name] for name, api_name in _TICKET_API_FIELDS}
    body["ticketNumber"] = format_ticket_number(values["number"])
    return body


class Comment(Record):
    id: int
    ticket_id: int
    body: str
    is_internal: bool
    notify_customer: bool
    author_type: AuthorType
    author_user_id: int | None = None
    mentions: list[int] = []
    created_at: datetime
    merged_from_ticket_id: int | None = None  # a copy made when that ticket was merged into this one


class TimelineEntry(Record):
    id: int
    ticket_id: int
    event_type: str
    actor: str
    actor_user_id: int | None = None
    field: str | None = None
    from_value: Any = None
    to_value: Any = None
    data: dict[str, Any] = {}
    created_at: datetime

    def to_api(self) -> dict[str, Any]:
        body = super().to_api()
        if self.field is not None:
            body["field"] = to_camel(self.field)  # the ticket's field as the API names it
        return body


class CommentResult(Record):
    """What adding a comment returns: the comment and the ticket after it."""

    comment: Comment
    ticket: Ticket


class MergeError(Record):
    ticket_id: int
    error: str
    code: str


class MergeResult(Record):
    """What merging tickets into a primary ticket did (``primary``: the ticket after it, if changed)."""

    primary: Ticket | None = None
    merged_ticket_ids: list[int] = []
    comments_merged: int = 0
    attachments_merged: int = 0
    secondary_tickets_closed: int = 0
    merge_note: str | None = None
    errors: list[MergeError] = []
