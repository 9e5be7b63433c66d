"""Every query of ticket attachments: content stored once per (account, sha256), one row per
attachment. A deleted attachment (``deleted_at``) stays as a row but is neither listed nor served."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.attachments import Attachment
from pulse.domain.ids import is_storable_id
from pulse.models.attachments import AttachmentContent, TicketAttachment


class AttachmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store_content(self, account_id: int, sha256: str, content: bytes) -> None:
        """Once per (account, hash): the same bytes uploaded again are not stored again."""
        await self.session.execute(pg_insert(AttachmentContent).values(
            account_id=account_id, sha256=sha256, size=len(content), content=content).on_conflict_do_nothing())

    async def insert(self, values: dict[str, Any]) -> Attachment:
        row = (await self.session.execute(pg_insert(TicketAttachment).values(**values)
                                          .returning(TicketAttachment))).scalar_one()
        return Attachment.model_validate(row)

    async def by_external_id(self, ticket_id: int, external_id: str) -> Attachment | None:
        """Deleted ones included: a Maverick document deleted in Pulse is not brought back."""
        row = await self.session.scalar(select(TicketAttachment).where(
            TicketAttachment.ticket_id == ticket_id, TicketAttachment.external_id == external_id))
        return Attachment.model_validate(row) if row is not None else None

    async def list(self, account_id: int, ticket_id: int, *, page: int, page_size: int) -> tuple[list[Attachment], int]:
        """Oldest first."""
        statement = select(TicketAttachment).where(TicketAttachment.account_id == account_id,
                                                   TicketAttachment.ticket_id == ticket_id,
                                                   TicketAttachment.deleted_at.is_(None))
        rows = list(await self.session.scalars(statement.order_by(TicketAttachment.id)
                                               .limit(page_size).offset((page - 1) * page_size)))
        if page == 1 and len(rows) < page_size:
            total = len(rows)
        else:
            total = int(await self.session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        return [Attachment.model_validate(row) for row in rows], total

    async def get(self, account_id: int, ticket_id: int, attachment_id: int) -> Attachment | None:
        if not is_storable_id(attachment_id):
            return None
        row = await self.session.scalar(select(TicketAttachment).where(
            TicketAttachment.account_id == account_id, TicketAttachment.ticket_id == ticket_id,
            TicketAttachment.id == attachment_id, TicketAttachment.deleted_at.is_(None)))
        return Attachment.model_validate(row) if row is not None else None

    async def mark_deleted(self, account_id: int, ticket_id: int, attachment_id: int, now: datetime,
                           user_id: int | None) -> Attachment | None:
        """The attachment, now deleted; None when the ticket has no such (undeleted) attachment."""
        if not is_storable_id(attachment_id):
            return None
        row = (await self.session.execute(
            update(TicketAttachment)
            .where(TicketAttachment.account_id == account_id, TicketAttachment.ticket_id == ticket_id,
                   TicketAttachment.id == attachment_id, TicketAttachment.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by_user_id=user_id)
            .returning(TicketAttachment))).scalar_one_or_none()
        return Attachment.model_validate(row) if row is not None else None

    async def is_deleted(self, ticket_id: int, attachment_id: int) -> bool:
        deleted_at = await self.session.scalar(select(TicketAttachment.deleted_at).where(
            TicketAttachment.ticket_id == ticket_id, TicketAttachment.id == attachment_id))
        return deleted_at is not None

    async def has_content_on_ticket(self, ticket_id: int, sha256: str) -> bool:
        """Documents move by content hash, once: the ticket has an attachment with these bytes."""
        found = await self.session.scalar(select(TicketAttachment.id).where(
            TicketAttachment.ticket_id == ticket_id, TicketAttachment.sha256 == sha256,
            TicketAttachment.deleted_at.is_(None)).limit(1))
        return found is not None

    async def content(self, account_id: int, sha256: str) -> bytes | None:
        return await self.session.scalar(select(AttachmentContent.content).where(
            AttachmentContent.account_id == account_id, AttachmentContent.sha256 == sha256))
