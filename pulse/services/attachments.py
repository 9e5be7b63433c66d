"""Ticket attachments (spec §2.3): upload, list, download. The content is stored first, once per
(account, sha256), in its own short transaction; then the ticket's workflow adds the attachment
(through the gateway: it is the one writer of the ticket, whose ``attachmentCount`` and version
follow and whose timeline and outbox get ``attachment_added``). Content stored for an upload whose
command then failed is kept for a retry of the same bytes. A delete goes through the ticket's
workflow too (``attachment_deleted``); the stored content is kept (see docs/decisions.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from temporalio.client import Client

from pulse.db import SessionFactory
from pulse.domain.attachments import Attachment, AttachmentSource, NewAttachment, clean_content_type, clean_file_name
from pulse.domain.commands import AddAttachmentInput, DeleteAttachmentInput
from pulse.domain.errors import DomainError, NotFound
from pulse.domain.tickets import TicketStatus
from pulse.gateway import resuming_when_needed
from pulse.repositories.attachments import AttachmentRepository
from pulse.services.auth import Principal
from pulse.services.tickets import TicketService, actor_of


class TooLarge(DomainError):
    status, code = 413, "payload_too_large"


@dataclass(frozen=True)
class Download:
    attachment: Attachment
    content: bytes


class AttachmentService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str, max_bytes: int) -> None:
        self.sessions = sessions
        self.tickets = TicketService(sessions, temporal, task_queue)
        self.max_bytes = max_bytes

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise TooLarge(f"an attachment may hold at most {self.max_bytes} bytes")

    async def upload(self, principal: Principal, reference: str, file_name: str | None, content_type: str | None,
                     content: bytes, idempotency_key: str | None) -> Attachment:
        self.check_size(len(content))
        ticket = await self.tickets.resolve(principal.account_id, reference)
        sha256 = hashlib.sha256(content).hexdigest()
        async with self.sessions() as session, session.begin():
            await AttachmentRepository(session).store_content(principal.account_id, sha256, content)
        command_id = None
        if idempotency_key:
            digest = hashlib.sha256(f"{ticket.id}/{idempotency_key}".encode()).hexdigest()[:32]
            command_id = f"attachment-key/{principal.account_id}/{digest}"
        command = AddAttachmentInput(actor=actor_of(principal), command_id=command_id, attachment=NewAttachment(
            file_name=clean_file_name(file_name), content_type=clean_content_type(content_type), size=len(content),
            sha256=sha256, source=AttachmentSource.PULSE))
        result = await resuming_when_needed(ticket.status == TicketStatus.CLOSED.value, lambda resume: (
            self.tickets.gateway.add_attachment(ticket.account_id, ticket.id, command, resume=resume)))
        return result.attachment

    async def delete(self, principal: Principal, reference: str, attachment_id: int) -> Attachment:
        """The attachment, deleted; 404 when the ticket has no such attachment (or it was deleted)."""
        ticket = await self.tickets.resolve(principal.account_id, reference)
        async with self.sessions() as session:
            attachment = await AttachmentRepository(session).get(principal.account_id, ticket.id, attachment_id)
        if attachment is None:  # checked here too, so a missing one costs no round trip through Temporal
            raise NotFound(f"attachment {attachment_id} of ticket {reference} not found")
        command = DeleteAttachmentInput(actor=actor_of(principal), attachment_id=attachment_id)
        result = await resuming_when_needed(ticket.status == TicketStatus.CLOSED.value, lambda resume: (
            self.tickets.gateway.delete_attachment(ticket.account_id, ticket.id, command, resume=resume)))
        return result.attachment

    async def list(self, principal: Principal, reference: str, *, page: int,
                   page_size: int) -> tuple[list[Attachment], int]:
        ticket = await self.tickets.resolve(principal.account_id, reference)
        async with self.sessions() as session:
            return await AttachmentRepository(session).list(principal.account_id, ticket.id, page=page,
                                                            page_size=page_size)

    async def download(self, principal: Principal, reference: str, attachment_id: int) -> Download:
        ticket = await self.tickets.resolve(principal.account_id, reference)
        async with self.sessions() as session:
            attachments = AttachmentRepository(session)
            attachment = await attachments.get(principal.account_id, ticket.id, attachment_id)
            content = await attachments.content(principal.account_id, attachment.sha256) if attachment else None
        if attachment is None or content is None:
            raise NotFound(f"attachment {attachment_id} of ticket {reference} not found")
        return Download(attachment=attachment, content=content)
