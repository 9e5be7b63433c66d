"""A Maverick ticket's comments and documents, brought to its Pulse ticket once each (through the
ticket's workflow, with command ids named after the Maverick objects; the link remembers which
were applied, so a later pull sends only new ones).

- A merchant's comment is a customer comment (internal ones, and any on a closed Pulse ticket,
  become internal notes); a Maverick agent's or the system's is an internal note by ``system``.
  Comments by an integration (Pulse's own pushes, when there are any) are not brought back.
- A document is downloaded, checked against its ``sha256`` and size, stored by hash and added as
  an attachment with ``source: maverick`` (once per document: its id is the attachment's
  ``external_id``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pulse.db import SessionFactory
from pulse.domain.attachments import AttachmentSource, NewAttachment, clean_content_type, clean_file_name
from pulse.domain.commands import AddAttachmentInput, AddCommentInput
from pulse.domain.errors import DomainError
from pulse.domain.maverick_sync import MAVERICK_ACTOR
from pulse.domain.tickets import AuthorType
from pulse.gateway import TicketGateway, resuming_when_needed
from pulse.integrations.maverick import MaverickClient, MaverickComment, MaverickDocument
from pulse.repositories.attachments import AttachmentRepository

MAX_COMMENT = 100_000


@dataclass
class ContentOutcome:
    comments: list[str] = field(default_factory=list)  # applied (or refused for good) Maverick comment ids
    documents: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # not brought: Pulse's own (or bytes it holds already)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class MaverickContent:
    def __init__(self, sessions: SessionFactory, gateway: TicketGateway, attachment_max_bytes: int) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.attachment_max_bytes = attachment_max_bytes

    async def bring(self, client: MaverickClient, account_id: int, ticket_id: int, closed: bool, maverick_id: str,
                    seen_comments: set[str], seen_documents: set[str], outcome: ContentOutcome) -> None:
        """Into ``outcome`` as it goes (so what was applied before Maverick failed us is kept);
        raises ``MaverickUnavailable`` when Maverick cannot be read."""
        for comment in sorted(await client.comments(maverick_id), key=lambda c: c.created_at):
            if comment.id not in seen_comments:
                await self._comment(account_id, ticket_id, closed, comment, outcome)
        for document in await client.documents(maverick_id):
            if document.id not in seen_documents:
                await self._document(client, account_id, ticket_id, closed, document, outcome)

    async def _comment(self, account_id: int, ticket_id: int, closed: bool, comment: MaverickComment,
                       outcome: ContentOutcome) -> None:
        author = comment.author.type if comment.author is not None else "system"
        if author == "integration":
            outcome.ignored.append(comment.id)  # ours (or another integration's): not brought back
            return
        merchant = author == "merchant"
        command = AddCommentInput(
            actor=MAVERICK_ACTOR, body=_comment_body(comment, merchant), is_internal=comment.internal or closed or not merchant,
            author_type=AuthorType.CUSTOMER if merchant else AuthorType.SYSTEM,
            command_id=f"maverick-comment/{account_id}/{comment.id}")
        await self._send(lambda resume: self.gateway.comment(account_id, ticket_id, command, resume=resume), closed,
                         comment.id, outcome.comments, outcome)

    async def _document(self, client: MaverickClient, account_id: int, ticket_id: int, closed: bool,
                        document: MaverickDocument, outcome: ContentOutcome) -> None:
        async with self.sessions() as session:
            held = await AttachmentRepository(session).has_content_on_ticket(ticket_id, document.sha256.lower())
        if held:  # documents move by content hash, once (e.g. an attachment Pulse pushed)
            outcome.ignored.append(document.id)
            return
        if document.size > self.attachment_max_bytes:
            outcome.documents.append(document.id)
            outcome.skipped.append(f"document {document.id}: {document.size} bytes is over the attachment limit")
            return
        content = await client.document_content(document.id)
        sha256 = hashlib.sha256(content).hexdigest()
        if sha256 != document.sha256.lower() or len(content) > self.attachment_max_bytes:
            outcome.failed.append(f"document {document.id}: its content does not match its sha256 (tried again later)")
            return
        async with self.sessions() as session, session.begin():
            await AttachmentRepository(session).store_content(account_id, sha256, content)
        command = AddAttachmentInput(actor=MAVERICK_ACTOR, command_id=f"maverick-document/{account_id}/{document.id}",
                                     attachment=NewAttachment(
                                         file_name=clean_file_name(document.file_name),
                                         content_type=clean_content_type(document.content_type), size=len(content),
                                         sha256=sha256, source=AttachmentSource.MAVERICK, external_id=document.id))
        await self._send(lambda resume: self.gateway.add_attachment(account_id, ticket_id, command, resume=resume),
                         closed, document.id, outcome.documents, outcome)

    @staticmethod
    async def _send(call: Callable[[bool], Awaitable[object]], closed: bool, remote_id: str, applied: list[str],
                    outcome: ContentOutcome) -> None:
        """Applied, or refused for good (4xx: recorded as skipped, not tried again); an engine that
        cannot be reached leaves it for the next pull."""
        try:
            await resuming_when_needed(closed, call)
        except DomainError as error:
            if error.status >= 500:
                outcome.failed.append(f"{remote_id}: {error.code}: {error.message}")
                return
            outcome.skipped.append(f"{remote_id}: {error.code}: {error.message}")
        applied.append(remote_id)


def _comment_body(comment: MaverickComment, merchant: bool) -> str:
    body = comment.body.strip() or "(empty comment)"
    if not merchant and comment.author is not None and comment.author.name:
        body = f"{comment.author.name} (Maverick): {body}"
    return body[:MAX_COMMENT]
