"""The change pipeline's pure core: ``apply(ticket, change, actor, now) → (ticket', events)``.

Every write to a ticket — a create, a PATCH, a comment, a delete, a merge, a rule's action — is a
typed change applied here to the stored ticket (:class:`pulse.domain.records.Ticket`), giving the
ticket after it and the :class:`TicketEvent` s it raised. The events become the ticket's timeline
entries and its outbox rows in the same transaction (``pulse.services.ticket_engine``); the rules
hook and the SLA clock see them.

:class:`TicketChanges` declares the writable fields of the field registry
(:mod:`pulse.domain.ticket_fields`): the API's request bodies inherit it, bulk stores it;
:data:`WRITABLE_FIELDS` / :data:`REFERENCE_FIELDS` derive from the registry.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from pulse.domain import records
from pulse.domain.errors import Conflict, ValidationFailed, VersionConflict
from pulse.domain.notify import notify_payload
from pulse.domain.ticket_fields import (EMAIL_SCHEMA, TICKET_FIELDS, RowId, limited, plausible_email, tags_are_short,
                                       tags_schema)
from pulse.domain.tickets import (
    PRIORITY_SEVERITY,
    AuthorType,
    Priority,
    TicketSource,
    TicketStatus,
    check_transition,
    is_reopen,
    merge_custom_fields,
    normalise_tags,
    status_after_customer_comment,
)


class Actor(BaseModel):
    """Who caused a change: ``user`` (with user_id), ``system``, ``automation:<id>`` …"""

    kind: str = "user"
    user_id: int | None = None

    @classmethod
    def system(cls) -> "Actor":
        return cls(kind="system")


class TicketEvent(BaseModel):
    """Something that happened to a ticket: a timeline entry and an outbox row."""

    type: str
    occurred_at: datetime
    actor: Actor
    field: str | None = None
    from_value: Any = None
    to_value: Any = None
    data: dict[str, Any] = {}


# -- the writable fields -------------------------------------------------------------------------

class TicketChanges(BaseModel):
    """The writable fields of a ticket (snake_case), each optional: a field not set is not changed
    (``model_fields_set``). One per update-writable row of :data:`~pulse.domain.ticket_fields.TICKET_FIELDS`,
    with its limits; the API's bodies inherit these fields (declared in the order the bodies list
    their problems)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = limited("description")
    priority: Priority | None = None
    status: TicketStatus | None = None
    assigned_to_user_id: RowId | None = None
    assigned_to_team_id: RowId | None = None
    type_id: RowId | None = None
    category_id: RowId | None = None
    tags: list[str] | None = Field(default=None, json_schema_extra=tags_schema)  # checked by tags_are_short
    requester_name: str | None = limited("requester_name")
    requester_email: str | None = limited("requester_email", schema=EMAIL_SCHEMA)
    requester_phone: str | None = limited("requester_phone")
    custom_fields: dict[str, Any] | None = None
    external_source: str | None = limited("external_source")
    external_ticket_id: str | None = limited("external_ticket_id")
    subject: str | None = limited("subject")

    _requester_email = field_validator("requester_email")(plausible_email)
    _tags = field_validator("tags")(tags_are_short)

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Serialised with the fields set only, so "not changed" survives the trip through Temporal."""
        data = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}

    def given(self) -> dict[str, Any]:
        """The fields set, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    def names(self) -> list[str]:
        return sorted(self.model_fields_set)


WRITABLE_FIELDS: tuple[str, ...] = tuple(field.column for field in TICKET_FIELDS if field.update)
# Reference fields → what they name (the account must hold it: checked by the engine).
REFERENCE_FIELDS: dict[str, str] = {field.column: field.reference for field in TICKET_FIELDS if field.reference}
# Fields whose change re-targets the SLA clock (policy selection looks at them).
SLA_POLICY_FIELDS = frozenset({"priority", "tags", "type_id", "category_id", "assigned_to_team_id"})
SEARCH_DOCUMENT_FIELDS = frozenset({"subject", "description"})


class NewTicket(TicketChanges):
    """A create: the fields of a new ticket (subject required), with the create-only ones."""

    subject: str = limited("subject", required=True)  # type: ignore[assignment]
    source: TicketSource | None = None


# The classes above are written out (typed attributes); they must declare the registry's fields.
if set(TicketChanges.model_fields) != set(WRITABLE_FIELDS) or set(NewTicket.model_fields) != {
        field.column for field in TICKET_FIELDS if field.create}:
    raise RuntimeError("TicketChanges / NewTicket must declare the writable fields of pulse.domain.ticket_fields")


class TagEdit(BaseModel):
    """Tag edits relative to the ticket's tags when applied (bulk add_tags / remove_tags)."""

    add: list[str] = []
    remove: list[str] = []


# Largest custom-fields document a ticket may hold (JSON bytes): the ticket travels in workflow
# payloads (whose limit is 2 MB), so this is checked before anything is written.
MAX_CUSTOM_FIELDS_BYTES = 64 * 1024


def check_custom_fields_size(custom_fields: dict[str, Any] | None) -> None:
    if custom_fields and len(json.dumps(custom_fields, default=str)) > MAX_CUSTOM_FIELDS_BYTES:
        raise ValidationFailed("customFields is too large", details=[
            {"field": "customFields", "message": f"at most {MAX_CUSTOM_FIELDS_BYTES // 1024} KiB of JSON"}])


# -- applying changes ---------------------------------------------------------------------------

def create(ticket_id: int, account_id: int, number: int, new: NewTicket, actor: Actor,
           now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    status = new.status or TicketStatus.OPEN
    priority = new.priority or Priority.MEDIUM
    fields = new.given()
    for name in ("status", "priority", "tags", "custom_fields", "source"):
        fields.pop(name, None)
    ticket = records.Ticket(
        id=ticket_id, account_id=account_id, number=number, status=status, priority=priority, version=1,
        tags=normalise_tags(new.tags or []), custom_fields=new.custom_fields or {},
        source=new.source or TicketSource.API, created_at=now, updated_at=now, created_by=actor.user_id,
        status_changed_at=now,
        resolved_at=now if status == TicketStatus.RESOLVED else None,
        closed_at=now if status == TicketStatus.CLOSED else None,
        **fields,
    )
    created = TicketEvent(type="ticket_created", occurred_at=now, actor=actor,
                          data={"status": status.value, "priority": priority.value})
    if ticket.assigned_to_user_id is not None:
        created = assignment_event(ticket, actor, created.model_copy(update={
            "field": "assigned_to_user_id", "to_value": ticket.assigned_to_user_id}))
    return ticket, [created]


def check_version(ticket: records.Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise VersionConflict(
            f"ticket is at version {ticket.version}, not {expected_version}; reload and retry",
            details=[{"field": "version", "message": f"current version is {ticket.version}"}],
        )


def check_open(ticket: records.Ticket) -> None:
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")


def _status(ticket: records.Ticket, target: TicketStatus, actor: Actor, now: datetime) -> list[TicketEvent]:
    current = ticket.status
    check_transition(current, target)
    if current == target:
        return []
    if is_reopen(current, target):
        ticket.reopen_count += 1
        ticket.last_reopened_at = now
        ticket.resolved_at = None
    if target == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    if target == TicketStatus.CLOSED:
        ticket.closed_at = now
    ticket.status = target
    ticket.status_changed_at = now
    return [TicketEvent(type="status_changed", occurred_at=now, actor=actor, field="status",
                        from_value=current.value, to_value=target.value)]


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (TicketStatus, Priority)):
        return value.value
    return value


def _touch(ticket: records.Ticket, events: list[TicketEvent], now: datetime) -> None:
    if events:
        ticket.version += 1
        ticket.updated_at = now


def update(ticket: records.Ticket, changes: TicketChanges, actor: Actor, now: datetime, *,
           tags: TagEdit | None = None) -> tuple[records.Ticket, list[TicketEvent]]:
    """A PATCH: each field that differs is set and raises ``field_changed`` (``status_changed``
    for the status, after the transition check); any change bumps the version."""
    check_open(ticket)
    after = ticket.model_copy(deep=True)
    given = changes.given()
    events: list[TicketEvent] = []
    if given.get("status") is not None:
        events += _status(after, TicketStatus(given.pop("status")), actor, now)
    given.pop("status", None)
    if "tags" in given:
        given["tags"] = normalise_tags(given["tags"] or [])
    if tags is not None and (tags.add or tags.remove):
        removed = set(normalise_tags(tags.remove))
        base = given.get("tags", after.tags or [])
        given["tags"] = [tag for tag in normalise_tags([*base, *tags.add]) if tag not in removed]
    if "custom_fields" in given:
        given["custom_fields"] = merge_custom_fields(after.custom_fields, given["custom_fields"])
    for field, value in given.items():
        current = getattr(after, field)
        if current == value:
            continue
        setattr(after, field, value)
        events.append(assignment_event(after, actor, TicketEvent(type="field_changed", occurred_at=now, actor=actor,
                                                            field=field, from_value=_json(current),
                                                            to_value=_json(value))))
    _touch(after, events, now)
    return after, events


class NewComment(BaseModel):
    """A comment as stored (its id is allocated before the change is applied)."""

    id: int
    body: str
    is_internal: bool = False
    notify_customer: bool = False
    author_type: AuthorType = AuthorType.AGENT
    mentions: list[int] = []


def _customer_reply(ticket: records.Ticket, new: NewComment) -> dict[str, Any]:
    """``notifyCustomer`` on a public comment: the body goes to the requester by email."""
    if not new.notify_customer or new.is_internal or not ticket.requester_email:
        return {}
    subject = f"[{ticket.ticket_number}] {ticket.subject}"
    return {"notify": notify_payload(kind="comment", reason=f"comment:{new.id}", channels=["email"], subject=subject,
                                     text=new.body, emails=[ticket.requester_email])}


def assignment_event(ticket: records.Ticket, actor: Actor, event: TicketEvent) -> TicketEvent:
    """A ticket assigned to someone else notifies the new assignee in-app."""
    if event.field != "assigned_to_user_id" or event.to_value is None or event.to_value == actor.user_id:
        return event
    subject = f"{ticket.ticket_number} was assigned to you"
    return event.model_copy(update={"data": {**event.data, "notify": notify_payload(
        kind="assignment", reason=f"assignment:{ticket.id}", channels=["in_app"], subject=subject,
        text=f"{ticket.ticket_number}: {ticket.subject}", user_ids=[int(event.to_value)])}})


def comment(ticket: records.Ticket, new: NewComment, actor: Actor,
            now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    """A comment: an internal note counts; a customer's reply may move the status (waiting →
    in progress, resolved → reopened); an agent's public reply counts and may be the first
    response. Raises ``comment_added`` (+ ``status_changed``)."""
    after = ticket.model_copy(deep=True)
    events: list[TicketEvent] = []
    if new.is_internal:
        after.internal_note_count += 1
    elif new.author_type == AuthorType.CUSTOMER:
        after.last_customer_response_at = now
        target = status_after_customer_comment(after.status)
        if target is not None:
            events += _status(after, target, actor, now)
    elif new.author_type == AuthorType.AGENT:
        after.response_count += 1
        if after.first_responded_at is None:
            after.first_responded_at = now
    events.insert(0, TicketEvent(type="comment_added", occurred_at=now, actor=actor, data={
        "commentId": new.id, "isInternal": new.is_internal, "authorType": new.author_type.value,
        "notifyCustomer": new.notify_customer and not new.is_internal, "mentions": list(new.mentions),
        "ticketNumber": ticket.ticket_number,
        **_customer_reply(ticket, new),
    }))
    after.version += 1
    after.updated_at = now
    return after, events


def delete(ticket: records.Ticket, actor: Actor, now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    after = ticket.model_copy(update={"deleted_at": now, "updated_at": now, "version": ticket.version + 1})
    return after, [TicketEvent(type="ticket_deleted", occurred_at=now, actor=actor)]


def priority_rank(ticket: records.Ticket) -> int:
    return PRIORITY_SEVERITY[ticket.priority]


ChangeKind = Literal["create", "update", "comment", "delete", "merge", "merged_into", "sla", "due"]


def changed_columns(before: records.Ticket | None, after: records.Ticket) -> dict[str, Any]:
    """The ticket's stored columns that differ (all of them for a new ticket)."""
    now_values = after.model_dump()
    if before is None:
        return now_values
    then = before.model_dump()
    return {name: value for name, value in now_values.items() if then.get(name) != value}


def merged_into(ticket: records.Ticket, primary_id: int, primary_number: str, actor: Actor, now: datetime, *,
                close: bool) -> tuple[records.Ticket, list[TicketEvent]]:
    """The secondary's side of a merge: linked to the primary, closed when asked."""
    after = ticket.model_copy(deep=True)
    after.merged_into_ticket_id = primary_id
    events = [TicketEvent(type="ticket_merged", occurred_at=now, actor=actor, field="merged_into_ticket_id",
                          to_value=primary_id, data={"primaryTicketId": primary_id, "primaryTicketNumber": primary_number})]
    if close:
        events += _status(after, TicketStatus.CLOSED, actor, now)
    after.version += 1
    after.updated_at = now
    return after, events


def merged_in(ticket: records.Ticket, secondary: records.Ticket, comments_copied: int, public_agent_comments: int,
              internal_notes: int, actor: Actor, now: datetime,
              attachments_copied: int = 0) -> tuple[records.Ticket, list[TicketEvent]]:
    """The primary's side of a merge: the secondary's comments and attachments counted, tags united."""
    after = ticket.model_copy(deep=True)
    after.response_count += public_agent_comments
    after.internal_note_count += internal_notes
    after.attachment_count += attachments_copied
    events = []
    tags = normalise_tags([*after.tags, *secondary.tags])
    if tags != after.tags:
        events.append(TicketEvent(type="field_changed", occurred_at=now, actor=actor, field="tags",
                                  from_value=list(after.tags), to_value=tags))
        after.tags = tags
    events.append(TicketEvent(type="ticket_merged_in", occurred_at=now, actor=actor, data={
        "ticketId": secondary.id, "ticketNumber": secondary.ticket_number, "commentsMerged": comments_copied,
        "attachmentsMerged": attachments_copied}))
    after.version += 1
    after.updated_at = now
    return after, events
