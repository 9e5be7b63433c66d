"""Applying ticket changes inside one database transaction. Called by the ticket activities
(and, for comments on closed tickets whose workflow has ended, by the API). Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain import records
from pulse.domain.commands import Actor, AddCommentInput, CreateTicketInput, DeleteTicketInput, UpdateTicketInput
from pulse.domain.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from pulse.domain.tickets import (
    PRIORITY_SEVERITY,
    AuthorType,
    Priority,
    TicketStatus,
    check_transition,
    is_reopen,
    merge_custom_fields,
    normalise_tags,
    status_after_customer_comment,
)
from pulse.models import Team, Ticket, TicketCategory, TicketComment, TicketType, TimelineEvent, User
from pulse.repositories.accounts import AccountRepository
from pulse.repositories.reference import ReferenceRepository
from pulse.repositories.ticket_lists import TicketSearchIndex
from pulse.repositories.tickets import CommentRepository, TicketRepository, TimelineRepository

# Fields a client may set on create/update (snake_case).
WRITABLE_FIELDS = (
    "subject",
    "description",
    "status",
    "priority",
    "assigned_to_user_id",
    "assigned_to_team_id",
    "type_id",
    "category_id",
    "tags",
    "requester_name",
    "requester_email",
    "requester_phone",
    "custom_fields",
    "external_source",
    "external_ticket_id",
)
CREATE_ONLY_FIELDS = ("source",)

# Reference field → (the table it points at, its API name, what it is called in messages).
_REFERENCES: dict[str, tuple[type[Any], str, str]] = {
    "assigned_to_user_id": (User, "assignedToUserId", "user"),
    "assigned_to_team_id": (Team, "assignedToTeamId", "team"),
    "type_id": (TicketType, "typeId", "ticket type"),
    "category_id": (TicketCategory, "categoryId", "ticket category"),
}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class TicketWriter:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tickets = TicketRepository(session)
        self.comments = CommentRepository(session)
        self.timeline = TimelineRepository(session)
        self.search_index = TicketSearchIndex(session)

    async def _check_references(self, account_id: int, fields: dict[str, Any]) -> None:
        problems = []
        for field, (model, api_name, label) in _REFERENCES.items():
            value = fields.get(field)
            if value is None:
                continue
            if await ReferenceRepository(self.session, model).get(account_id, value) is None:
                problems.append({"field": api_name, "message": f"no {label} with id {value} in this account"})
        if problems:
            raise ValidationFailed("unknown referenced record", details=problems)

    def _log(
        self,
        ticket: Ticket,
        event_type: str,
        actor: Actor,
        now: datetime,
        *,
        field: str | None = None,
        from_value: Any = None,
        to_value: Any = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.timeline.add(
            TimelineEvent(
                account_id=ticket.account_id,
                ticket_id=ticket.id,
                event_type=event_type,
                actor=actor.kind,
                actor_user_id=actor.user_id,
                field=field,
                from_value=_json(from_value),
                to_value=_json(to_value),
                data=data or {},
                created_at=now,
            )
        )

    async def create(self, command: CreateTicketInput, now: datetime) -> records.Ticket:
        existing = await self.tickets.get(command.account_id, command.ticket_id)
        if existing is not None:
            return records.Ticket.model_validate(existing)
        fields = dict(command.fields)
        await self._check_references(command.account_id, fields)
        priority = Priority(fields.pop("priority", None) or Priority.MEDIUM)
        status = TicketStatus(fields.pop("status", None) or TicketStatus.OPEN)
        number = await AccountRepository(self.session).allocate_ticket_number(command.account_id)
        ticket = Ticket(
            id=command.ticket_id,
            account_id=command.account_id,
            number=number,
            status=status.value,
            priority=priority.value,
            priority_rank=PRIORITY_SEVERITY[priority],
            version=1,
            tags=normalise_tags(fields.pop("tags", None) or []),
            custom_fields=fields.pop("custom_fields", None) or {},
            created_at=now,
            updated_at=now,
            created_by=command.actor.user_id,
            resolved_at=now if status == TicketStatus.RESOLVED else None,
            closed_at=now if status == TicketStatus.CLOSED else None,
            **fields,
        )
        await self.tickets.add(ticket)
        await self.search_index.refresh(ticket.id)
        self._log(ticket, "ticket_created", command.actor, now, data={"status": status.value, "priority": priority.value})
        await self.session.flush()
        return records.Ticket.model_validate(ticket)

    async def _load(self, account_id: int, ticket_id: int) -> Ticket:
        ticket = await self.tickets.get(account_id, ticket_id, for_update=True)
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        return ticket

    def _set_status(self, ticket: Ticket, target: TicketStatus, actor: Actor, now: datetime) -> None:
        current = TicketStatus(ticket.status)
        check_transition(current, target)
        if current == target:
            return
        if is_reopen(current, target):
            ticket.reopen_count += 1
            ticket.resolved_at = None
        if target == TicketStatus.RESOLVED:
            ticket.resolved_at = now
        if target == TicketStatus.CLOSED:
            ticket.closed_at = now
        ticket.status = target.value
        self._log(ticket, "status_changed", actor, now, field="status", from_value=current.value, to_value=target.value)

    async def update(self, account_id: int, ticket_id: int, command: UpdateTicketInput, now: datetime) -> records.Ticket:
        ticket = await self._load(account_id, ticket_id)
        if command.expected_version is not None and command.expected_version != ticket.version:
            raise VersionConflict(
                f"ticket is at version {ticket.version}, not {command.expected_version}; reload and retry",
                details=[{"field": "version", "message": f"current version is {ticket.version}"}],
            )
        if ticket.status == TicketStatus.CLOSED.value:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        changes = dict(command.changes)
        await self._check_references(account_id, changes)
        changed = document_changed = False
        if "status" in changes:
            target = TicketStatus(changes.pop("status"))
            if target.value != ticket.status:
                self._set_status(ticket, target, command.actor, now)
                changed = True
        if "tags" in changes:
            changes["tags"] = normalise_tags(changes["tags"] or [])
        if command.add_tags or command.remove_tags:
            # Relative to the tags at apply time (bulk add_tags / remove_tags).
            removed = set(normalise_tags(command.remove_tags))
            base = changes.get("tags", ticket.tags or [])
            changes["tags"] = [tag for tag in normalise_tags([*base, *command.add_tags]) if tag not in removed]
        if "custom_fields" in changes:
            changes["custom_fields"] = merge_custom_fields(ticket.custom_fields, changes["custom_fields"])
        for field, value in changes.items():
            if field not in WRITABLE_FIELDS:
                raise ValidationFailed(f"{field} is not writable", details=[{"field": field, "message": "not writable"}])
            current = getattr(ticket, field)
            if field == "priority":
                value = Priority(value).value
            if current == value:
                continue
            setattr(ticket, field, value)
            if field == "priority":
                ticket.priority_rank = PRIORITY_SEVERITY[Priority(value)]
            self._log(ticket, "field_changed", command.actor, now, field=field, from_value=current, to_value=value)
            changed = True
            document_changed = document_changed or field in ("subject", "description")
        if changed:
            ticket.version += 1
            ticket.updated_at = now
        await self.session.flush()
        if document_changed:
            await self.search_index.refresh(ticket.id)
        return records.Ticket.model_validate(ticket)

    async def add_comment(
        self, account_id: int, ticket_id: int, command: AddCommentInput, now: datetime
    ) -> records.CommentResult:
        ticket = await self._load(account_id, ticket_id)
        comment = TicketComment(
            account_id=account_id,
            ticket_id=ticket.id,
            body=command.body,
            is_internal=command.is_internal,
            notify_customer=command.notify_customer and not command.is_internal,
            author_type=command.author_type.value,
            author_user_id=command.actor.user_id,
            mentions=command.mentions,
            created_at=now,
        )
        await self.comments.add(comment)
        await self.search_index.append_comment(ticket.id, command.body, internal=command.is_internal)
        if command.is_internal:
            ticket.internal_note_count += 1
        elif command.author_type == AuthorType.CUSTOMER:
            ticket.last_customer_response_at = now
            target = status_after_customer_comment(TicketStatus(ticket.status))
            if target is not None:
                self._set_status(ticket, target, command.actor, now)
        elif command.author_type == AuthorType.AGENT:
            ticket.response_count += 1
            if ticket.first_responded_at is None:
                ticket.first_responded_at = now
        self._log(
            ticket,
            "comment_added",
            command.actor,
            now,
            data={
                "commentId": comment.id,
                "isInternal": comment.is_internal,
                "authorType": comment.author_type,
                "notifyCustomer": comment.notify_customer,
            },
        )
        ticket.version += 1
        ticket.updated_at = now
        await self.session.flush()
        return records.CommentResult(
            comment=records.Comment.model_validate(comment), ticket=records.Ticket.model_validate(ticket)
        )

    async def delete(self, account_id: int, ticket_id: int, command: DeleteTicketInput, now: datetime) -> records.Ticket:
        ticket = await self._load(account_id, ticket_id)
        if command.expected_version is not None and command.expected_version != ticket.version:
            raise VersionConflict(f"ticket is at version {ticket.version}, not {command.expected_version}")
        ticket.deleted_at = now
        ticket.updated_at = now
        ticket.version += 1
        self._log(ticket, "ticket_deleted", command.actor, now)
        await self.session.flush()
        return records.Ticket.model_validate(ticket)
