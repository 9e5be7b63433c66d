"""Ticket attachments, pure: the record the API renders, what a new one carries, and the change it
makes to its ticket (``attachmentCount`` + 1, a new version, an ``attachment_added`` event on the
timeline and in the outbox — the event a Maverick push will consume); a deletion's change
(``attachmentCount`` − 1, a new version, ``attachment_deleted``, which nothing pushes)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from pulse.domain import records
from pulse.domain.changes import Actor, TicketEvent

MAX_FILE_NAME = 255


class AttachmentSource(StrEnum):
    PULSE = "pulse"
    MAVERICK = "maverick"


class Attachment(records.Record):
    id: int
    ticket_id: int
    file_name: str
    content_type: str
    size: int
    sha256: str
    source: AttachmentSource
    external_id: str | None = None  # the Maverick document it came from or went to (not shown)
    created_at: datetime
    merged_from_ticket_id: int | None = None  # a copy a merge made on the primary: the secondary it came from
    deleted_at: datetime | None = None  # (not shown: a deleted attachment is not served)

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude={"external_id", "deleted_at"})


class NewAttachment(BaseModel):
    """An attachment whose content is stored already (by its hash) and which the ticket's workflow
    is asked to add."""

    file_name: str = Field(min_length=1, max_length=MAX_FILE_NAME)
    content_type: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: AttachmentSource = AttachmentSource.PULSE
    external_id: str | None = Field(default=None, max_length=200)


class AttachmentResult(records.Record):
    """What adding an attachment returns: the attachment and the ticket after it."""

    attachment: Attachment
    ticket: records.Ticket


def clean_file_name(name: str | None) -> str:
    """A file name safe to store and to send back in ``Content-Disposition``: the last path part,
    without control characters, at most 255 characters; ``attachment`` when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return cleaned[-MAX_FILE_NAME:] if cleaned else "attachment"


def clean_content_type(value: str | None) -> str:
    value = (value or "").strip()
    if not value or len(value) > 255 or any(ch.isspace() and ch != " " for ch in value) or "/" not in value:
        return "application/octet-stream"
    return value


def attachment_added(ticket: records.Ticket, attachment: Attachment, actor: Actor,
                     now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    after = ticket.model_copy(update={"attachment_count": ticket.attachment_count + 1, "version": ticket.version + 1,
                                      "updated_at": now})
    return after, [TicketEvent(type="attachment_added", occurred_at=now, actor=actor, data={
        "attachmentId": attachment.id, "fileName": attachment.file_name, "contentType": attachment.content_type,
        "size": attachment.size, "sha256": attachment.sha256, "source": attachment.source.value,
    })]


def attachment_deleted(ticket: records.Ticket, attachment: Attachment, actor: Actor,
                       now: datetime) -> tuple[records.Ticket, list[TicketEvent]]:
    after = ticket.model_copy(update={"attachment_count": max(ticket.attachment_count - 1, 0),
                                      "version": ticket.version + 1, "updated_at": now})
    return after, [TicketEvent(type="attachment_deleted", occurred_at=now, actor=actor, data={
        "attachmentId": attachment.id, "fileName": attachment.file_name, "sha256": attachment.sha256,
        "source": attachment.source.value,
    })]
