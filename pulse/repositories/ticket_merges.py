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
