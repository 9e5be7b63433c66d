"""Queries of a ticket merge."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class CopiedComments:
    total: int
    public_agent: int
    internal: int


class TicketMergeRepository:
    COPY_COMMENTS = text(
        """
        INSERT INTO ticket_comments (account_id, ticket_id, body, is_internal, notify_customer, author_type,
                                     author_user_id, mentions, created_at, merged_from_ticket_id,
                                     merged_from_comment_id)
        SELECT account_id, :target_id, body, is_internal, false, author_type, author_user_id, mentions,
               created_at, :source_id, id
          FROM ticket_comments
         WHERE ticket_id = :source_id
         ORDER BY created_at, id
        ON CONFLICT (ticket_id, merged_from_comment_id) WHERE merged_from_comment_id IS NOT NULL DO NOTHING
        RETURNING is_internal, author_type
        """
    )

    COPY_ATTACHMENTS = text(
        """
        INSERT INTO ticket_attachments (account_id, ticket_id, file_name, content_type, size, sha256, source,
                                        created_by_user_id, created_at, merged_from_ticket_id, merged_from_attachment_id)
        SELECT DISTINCT ON (s.sha256) s.account_id, :target_id, s.file_name, s.content_type, s.size, s.sha256,
               s.source, s.created_by_user_id, s.created_at, :source_id, s.id
          FROM ticket_attachments s
         WHERE s.ticket_id = :source_id AND s.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM ticket_attachments t
                            WHERE t.ticket_id = :target_id AND t.sha256 = s.sha256 AND t.deleted_at IS NULL)
         ORDER BY s.sha256, s.created_at, s.id
        ON CONFLICT (ticket_id, merged_from_attachment_id) WHERE merged_from_attachment_id IS NOT NULL DO NOTHING
        RETURNING id
        """
    )

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def copy_comments(self, source_ticket_id: int, target_ticket_id: int) -> CopiedComments:
        """Copy every comment of the source ticket to the target, keeping each one's time (so the
        target's thread reads in time order) and remembering where it came from. A comment copied
        before is not copied again. One statement."""
        rows = (
            await self.session.execute(self.COPY_COMMENTS, {"source_id": source_ticket_id, "target_id": target_ticket_id})
        ).all()
        return CopiedComments(
            total=len(rows),
            public_agent=sum(1 for internal, author in rows if not internal and author == "agent"),
            internal=sum(1 for internal, _ in rows if internal),
        )

    async def copy_attachments(self, source_ticket_id: int, target_ticket_id: int) -> int:
        """Make the source ticket's attachments the target's too, each content once: an attachment
        whose bytes (sha256) the target holds already is not copied, and of several with the same
        bytes on the source only the first is. The copy points at the same stored content (nothing
        is copied but the row), keeps its time and source and remembers where it came from; it
        carries no Maverick document id (the document stays the source ticket's). One statement."""
        rows = (await self.session.execute(
            self.COPY_ATTACHMENTS, {"source_id": source_ticket_id, "target_id": target_ticket_id})).all()
        return len(rows)
