"""The audit log's queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, account_id: int, actor_user_id: int | None, actor_token_id: int | None, action: str,
                  target_type: str, target_id: int | None, details: dict[str, Any]) -> None:
        self.session.add(AuditEntry(account_id=account_id, actor_user_id=actor_user_id,
                                    actor_token_id=actor_token_id, action=action, target_type=target_type,
                                    target_id=target_id, details=details))
        await self.session.flush()

    async def page(self, account_id: int, *, page: int, page_size: int) -> tuple[list[AuditEntry], int]:
        """Newest first; two queries (the count, then the page on the (account, id DESC) index, unless past the end)."""
        total = await self.session.scalar(select(func.count()).select_from(AuditEntry)
                                          .where(AuditEntry.account_id == account_id))
        offset = (page - 1) * page_size
        if offset >= int(total or 0):
            return [], int(total or 0)
        rows = await self.session.scalars(
            select(AuditEntry).where(AuditEntry.account_id == account_id).order_by(AuditEntry.id.desc())
            .offset(offset).limit(page_size))
        return list(rows), int(total or 0)
