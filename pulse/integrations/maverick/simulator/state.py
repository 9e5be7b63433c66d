"""The simulator's world: Maverick's categories, tickets, comments and documents in memory.

Every change bumps the object's ``version`` and ``updatedAt`` and takes the next number of one
change sequence; "tickets changed since" lists by that sequence, so a ticket changed while a
client pages moves to the end and is seen again, never skipped. Ids are random strings and
cursors opaque tokens, so a client cannot come to depend on their shape.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from pulse.integrations.maverick.wire import (
    MAVERICK_PRIORITIES,
    MAVERICK_STATUSES,
    Author,
    Category,
    MaverickComment,
    MaverickDocument,
    MaverickTicket,
)


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(position, dict):
            raise ValueError
        return position
    except ValueError:
        raise SimError(400, "invalid_cursor", "the cursor is not one this server gave out") from None


@dataclass
class StoredDocument:
    meta: MaverickDocument
    ticket_id: str
    content: bytes


@dataclass
class SimState:
    """Maverick's data. ``on_event`` is called with (type, data) for every change: the webhook
    sender's queue."""

    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    on_event: Callable[[str, dict[str, Any]], None] = lambda _type, _data: None
    categories: dict[int, Category] = field(default_factory=dict)
    tickets: dict[str, MaverickTicket] = field(default_factory=dict)
    change_seq: dict[str, int] = field(default_factory=dict)
    comments: dict[str, list[MaverickComment]] = field(default_factory=dict)
    documents: dict[str, StoredDocument] = field(default_factory=dict)
    integration_writes: int = 0  # changes made through the API (by Pulse): echo pushes show here
    _sequence: Any = field(default_factory=lambda: itertools.count(1))
    _by_external_id: dict[tuple[str, str, str], str] = field(default_factory=dict)

    # -- helpers ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        return now.astimezone(timezone.utc)

    def ticket(self, ticket_id: str) -> MaverickTicket:
        found = self.tickets.get(ticket_id)
        if found is None:
            raise SimError(404, "not_found", f"ticket {ticket_id} not found")
        return found

    def _store(self, ticket: MaverickTicket) -> MaverickTicket:
        if ticket.last_changed_by is not None and ticket.last_changed_by.type == "integration":
            self.integration_writes += 1
        self.tickets[ticket.id] = ticket
        self.change_seq[ticket.id] = next(self._sequence)
        return ticket

    # -- tickets ------------------------------------------------------------------------------

    def create_ticket(self, *, subject: str, body: str = "", category_id: int | None = None, status: str = "new",
                      priority: str = "normal", merchant_id: str | None = None, merchant_name: str | None = None,
                      contact_email: str | None = None, contact_phone: str | None = None,
                      changed_by: Author | None = None, ticket_id: str | None = None) -> MaverickTicket:
        _check_status(status)
        _check_priority(priority)
        now = self._now()
        ticket = MaverickTicket(
            id=ticket_id or _new_id("tkt"), merchant_id=merchant_id or _new_id("mer"),
            merchant_name=merchant_name or "Merchant", subject=subject, body=body, category_id=category_id,
            status=status, priority=priority, contact_email=contact_email, contact_phone=contact_phone,
            created_at=now, updated_at=now, version=1,
            last_changed_by=changed_by or Author(type="merchant", name=merchant_name or "Merchant"))
        self._store(ticket)
        self.comments.setdefault(ticket.id, [])
        self.on_event("ticket.created", {"ticketId": ticket.id})
        return ticket

    def change_ticket(self, ticket_id: str, changes: dict[str, Any], *, changed_by: Author,
                      expected_version: int | None = None) -> MaverickTicket:
        ticket = self.ticket(ticket_id)
        if expected_version is not None and expected_version != ticket.version:
            raise SimError(409, "version_mismatch",
                           f"ticket {ticket_id} is at version {ticket.version}, not {expected_version}")
        allowed = {"subject", "body", "category_id", "status", "priority", "contact_email", "contact_phone",
                   "merchant_name"}
        unknown = set(changes) - allowed
        if unknown:
            raise SimError(422, "invalid_field", f"these fields cannot be changed: {', '.join(sorted(unknown))}")
        if "status" in changes:
            _check_status(changes["status"])
        if "priority" in changes:
            _check_priority(changes["priority"])
        effective = {key: value for key, value in changes.items() if getattr(ticket, key) != value}
        if not effective:
            return ticket
        changed = ticket.model_copy(update={**effective, "version": ticket.version + 1, "updated_at": self._now(),
                                            "last_changed_by": changed_by})
        self._store(changed)
        kind = "ticket.status_changed" if set(effective) == {"status"} else "ticket.updated"
        self.on_event(kind, {"ticketId": ticket_id, "version": changed.version})
        return changed

    def changed_since(self, since: datetime | None, cursor: str | None, limit: int) -> tuple[list[MaverickTicket], str | None]:
        """Tickets whose last change is at or after ``since``, oldest change first."""
        after_seq = 0
        if cursor is not None:
            position = decode_cursor(cursor)
            after_seq = int(position.get("s", 0))
            if position.get("u") is not None:
                since = datetime.fromisoformat(position["u"])
        matching = sorted(((seq, ticket_id) for ticket_id, seq in self.change_seq.items() if seq > after_seq
                           and (since is None or self.tickets[ticket_id].updated_at >= since)))
        page = [self.tickets[ticket_id] for _, ticket_id in matching[:limit]]
        next_cursor = None
        if len(matching) > limit:
            next_cursor = encode_cursor({"s": matching[limit - 1][0], "u": since.isoformat() if since else None,
                                         "n": secrets.token_hex(2)})
        return page, next_cursor

    # -- comments and documents -----------------------------------------------------------------

    def add_comment(self, ticket_id: str, *, body: str, internal: bool, author: Author,
                    external_id: str | None = None) -> tuple[MaverickComment, bool]:
        """(the comment, whether it was created now): the same externalId answers the first one."""
        ticket = self.ticket(ticket_id)
        if external_id is not None:
            known = self._by_external_id.get(("comment", ticket_id, external_id))
            if known is not None:
                return next(c for c in self.comments[ticket_id] if c.id == known), False
        now = self._now()
        comment = MaverickComment(id=_new_id("cmt"), body=body, internal=internal, author=author, created_at=now,
                                  updated_at=now, version=1, external_id=external_id)
        self.comments.setdefault(ticket_id, []).append(comment)
        if external_id is not None:
            self._by_external_id[("comment", ticket_id, external_id)] = comment.id
        self._touch(ticket, author)
        self.on_event("comment.created", {"ticketId": ticket_id, "commentId": comment.id})
        return comment, True

    def add_document(self, ticket_id: str, *, file_name: str, content_type: str, content: bytes,
                     author: Author, external_id: str | None = None) -> tuple[MaverickDocument, bool]:
        ticket = self.ticket(ticket_id)
        if external_id is not None:
            known = self._by_external_id.get(("document", ticket_id, external_id))
            if known is not None:
                return self.documents[known].meta, False
        now = self._now()
        document = MaverickDocument(id=_new_id("doc"), file_name=file_name, content_type=content_type,
                                    size=len(content), sha256=hashlib.sha256(content).hexdigest(), created_at=now,
                                    updated_at=now, version=1, external_id=external_id)
        self.documents[document.id] = StoredDocument(meta=document, ticket_id=ticket_id, content=content)
        if external_id is not None:
            self._by_external_id[("document", ticket_id, external_id)] = document.id
        self._touch(ticket, author)
        self.on_event("document.created", {"ticketId": ticket_id, "documentId": document.id})
        return document, True

    def ticket_documents(self, ticket_id: str) -> list[MaverickDocument]:
        self.ticket(ticket_id)
        return [stored.meta for stored in self.documents.values() if stored.ticket_id == ticket_id]

    def document(self, document_id: str) -> StoredDocument:
        found = self.documents.get(document_id)
        if found is None:
            raise SimError(404, "not_found", f"document {document_id} not found")
        return found

    def _touch(self, ticket: MaverickTicket, author: Author) -> None:
        """A new comment or document is a change of its ticket (it shows in ``updatedSince``)."""
        self._store(ticket.model_copy(update={"version": ticket.version + 1, "updated_at": self._now(),
                                              "last_changed_by": author}))


def page_of(items: list[Any], cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """Plain offset paging for the small lists (comments, documents, categories)."""
    offset = int(decode_cursor(cursor).get("o", 0)) if cursor else 0
    page = items[offset:offset + limit]
    following = offset + limit
    return page, encode_cursor({"o": following, "n": secrets.token_hex(2)}) if following < len(items) else None


def _check_status(status: Any) -> None:
    if status not in MAVERICK_STATUSES:
        raise SimError(422, "invalid_status", f"status must be one of {', '.join(MAVERICK_STATUSES)}")


def _check_priority(priority: Any) -> None:
    if priority not in MAVERICK_PRIORITIES:
        raise SimError(422, "invalid_priority", f"priority must be one of {', '.join(MAVERICK_PRIORITIES)}")
