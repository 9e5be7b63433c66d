"""The ticket's fields: one table from which the request bodies, the writable fields and the list
parameters come.

A row names a field as the API spells it (camelCase) and as the ticket stores it (attribute and
column), says what kind of value it holds and what may be done with it:

- ``create`` / ``update``: writable on create / on update (PATCH, bulk).
  :class:`pulse.domain.changes.TicketChanges` declares the update-writable fields with the limits
  given here, :class:`~pulse.domain.changes.NewTicket` adds the create-only ones, and the API's
  request bodies inherit them (``pulse.api.schemas``).
- ``filter``: a list parameter (``pulse.domain.ticket_query``): by equality, a comma-separated
  value being any-of (``?status=open,pending``); a datetime by range instead, under its name
  without ``At`` (``?createdAfter=…&createdBefore=…``).
- ``sort``: a sort key (``?sort=-createdAt``).
- ``reference``: what the id names; the account must hold it (checked when written).
- ``aliases``: other names the API accepts for the field, in bodies and list parameters.

Tags and custom fields have list parameters of their own (``tags``, ``tagsAny``,
``customFields.<key>``), so they are not ``filter`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field

from pulse.domain.ids import MAX_ID
from pulse.domain.tickets import Priority, TicketSource, TicketStatus

Kind = Literal["id", "int", "text", "enum", "bool", "datetime", "tags", "json"]


@dataclass(frozen=True)
class TicketField:
    api: str  # the API's name (camelCase)
    column: str  # the ticket's attribute and column
    kind: Kind
    enum: type[Enum] | None = None  # the values of an ``enum`` field
    create: bool = False
    update: bool = False
    filter: bool = False
    sort: bool = False
    reference: str | None = None
    aliases: tuple[str, ...] = ()
    min_length: int | None = None  # characters of a ``text`` field
    max_length: int | None = None  # characters of a ``text`` field; of each tag of a ``tags`` field

    @property
    def range_name(self) -> str:
        """The name of a datetime's range parameters: ``created`` → ``createdAfter``/``createdBefore``."""
        return self.api.removesuffix("At")


TICKET_FIELDS: tuple[TicketField, ...] = (
    # Writable.
    TicketField("subject", "subject", "text", create=True, update=True, filter=True, sort=True,
                min_length=1, max_length=500),
    TicketField("description", "description", "text", create=True, update=True, max_length=100_000),
    TicketField("status", "status", "enum", TicketStatus, create=True, update=True, filter=True, sort=True),
    TicketField("priority", "priority", "enum", Priority, create=True, update=True, filter=True, sort=True),
    TicketField("assignedToUserId", "assigned_to_user_id", "id", create=True, update=True, filter=True, sort=True,
                reference="user", aliases=("assignedTo",)),
    TicketField("assignedToTeamId", "assigned_to_team_id", "id", create=True, update=True, filter=True, sort=True,
                reference="team", aliases=("assignedTeamId",)),
    TicketField("typeId", "type_id", "id", create=True, update=True, filter=True, sort=True,
                reference="ticket type", aliases=("ticketTypeId",)),
    TicketField("categoryId", "category_id", "id", create=True, update=True, filter=True, sort=True,
                reference="ticket category"),
    TicketField("tags", "tags", "tags", create=True, update=True, max_length=100),
    TicketField("requesterName", "requester_name", "text", create=True, update=True, filter=True, sort=True,
                max_length=200),
    TicketField("requesterEmail", "requester_email", "text", create=True, update=True, filter=True, sort=True,
                max_length=320),
    TicketField("requesterPhone", "requester_phone", "text", create=True, update=True, filter=True, sort=True,
                max_length=50),
    TicketField("customFields", "custom_fields", "json", create=True, update=True),
    TicketField("externalSource", "external_source", "text", create=True, update=True, filter=True, sort=True,
                max_length=32),
    TicketField("externalTicketId", "external_ticket_id", "text", create=True, update=True, filter=True, sort=True,
                max_length=200),
    TicketField("source", "source", "enum", TicketSource, create=True, filter=True, sort=True),
    # Kept by Pulse.
    TicketField("id", "id", "id", filter=True, sort=True),
    TicketField("ticketNumber", "number", "int", filter=True, sort=True),  # filtered as PULSE-42 or 42
    TicketField("version", "version", "int", filter=True, sort=True),
    TicketField("createdBy", "created_by", "id", filter=True, sort=True),
    TicketField("mergedIntoTicketId", "merged_into_ticket_id", "id", filter=True, sort=True),
    TicketField("slaPolicyId", "sla_policy_id", "id", filter=True, sort=True),
    TicketField("slaStatus", "sla_status", "text", filter=True, sort=True),  # on_time, at_risk, breached, paused
    TicketField("slaFirstResponseMet", "sla_first_response_met", "bool", filter=True, sort=True),
    TicketField("slaResolutionMet", "sla_resolution_met", "bool", filter=True, sort=True),
    TicketField("slaFirstResponseDue", "sla_first_response_due", "datetime", filter=True, sort=True),
    TicketField("slaResolutionDue", "sla_resolution_due", "datetime", filter=True, sort=True),
    TicketField("slaBreachedAt", "sla_breached_at", "datetime", filter=True, sort=True),
    TicketField("slaPausedAt", "sla_paused_at", "datetime", filter=True, sort=True),
    TicketField("slaTotalPausedTime", "sla_total_paused_time", "int", filter=True, sort=True),
    TicketField("firstResponseTime", "first_response_time", "int", filter=True, sort=True),
    TicketField("resolutionTime", "resolution_time", "int", filter=True, sort=True),
    TicketField("responseCount", "response_count", "int", filter=True, sort=True),
    TicketField("internalNoteCount", "internal_note_count", "int", filter=True, sort=True),
    TicketField("attachmentCount", "attachment_count", "int", filter=True, sort=True),
    TicketField("reopenCount", "reopen_count", "int", filter=True, sort=True),
    TicketField("escalationCount", "escalation_count", "int", filter=True, sort=True),
    TicketField("escalationLevel", "escalation_level", "int", filter=True, sort=True),
    TicketField("createdAt", "created_at", "datetime", filter=True, sort=True),
    TicketField("updatedAt", "updated_at", "datetime", filter=True, sort=True),
    TicketField("firstRespondedAt", "first_responded_at", "datetime", filter=True, sort=True),
    TicketField("resolvedAt", "resolved_at", "datetime", filter=True, sort=True),
    TicketField("closedAt", "closed_at", "datetime", filter=True, sort=True),
    TicketField("lastCustomerResponseAt", "last_customer_response_at", "datetime", filter=True, sort=True),
)

FIELDS: dict[str, TicketField] = {field.column: field for field in TICKET_FIELDS}

# Other names the API accepts → the field's API name.
INPUT_ALIASES: dict[str, str] = {alias: field.api for field in TICKET_FIELDS for alias in field.aliases}


# -- value rules (the pydantic side of the table, for TicketChanges) -----------------------------

# A reference to a stored row: anything outside the id column's range names nothing (422).
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


EMAIL_SCHEMA = {"format": "email"}  # what the schema says of an email address (checked by plausible_email)


def limited(column: str, *, required: bool = False, schema: dict[str, Any] | None = None) -> Any:
    """A text field's pydantic ``Field`` with the table's length limits (optional unless required)."""
    row = FIELDS[column]
    bounds = {name: value for name, value in (("min_length", row.min_length), ("max_length", row.max_length))
              if value is not None}
    return Field(**bounds, json_schema_extra=schema) if required else Field(default=None, **bounds,
                                                                           json_schema_extra=schema)


def plausible_email(value: str | None) -> str | None:
    if value is not None and ("@" not in value or value.startswith("@") or value.endswith("@")):
        raise ValueError("not an email address")
    return value


MAX_TAGS = 50  # tags on one ticket


def tags_schema(schema: dict[str, Any]) -> None:
    """The bounds :func:`tags_are_short` checks, stated on the field's array (a list or null)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option.update(maxItems=MAX_TAGS, items={"type": "string", "maxLength": FIELDS["tags"].max_length})


def tags_are_short(value: list[str] | None) -> list[str] | None:
    limit = FIELDS["tags"].max_length
    if value is not None and len(value) > MAX_TAGS:
        raise ValueError(f"a ticket has at most {MAX_TAGS} tags")
    if value is not None and limit is not None and any(len(tag) > limit for tag in value):
        raise ValueError(f"a tag is at most {limit} characters")
    return value
