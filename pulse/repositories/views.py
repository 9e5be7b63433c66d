"""Saved views: a user's own views and the account's shared ones."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.models import SavedView


class SavedViewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _visible(account_id: int, user_id: int | None) -> list:
        visible_to_user = SavedView.shared.is_(True)
        if user_id is not None:
            visible_to_user = or_(SavedView.owner_user_id == user_id, visible_to_user)
        return [SavedView.account_id == account_id, visible_to_user]

    async def get_visible(self, account_id: int, user_id: int | None, view_id: int) -> SavedView | None:
        if not is_storable_id(view_id):
            return None  # past bigint: no such view
        """A view the user owns or that is shared in the account (1 query)."""
        return await self.session.scalar(
            select(SavedView).where(SavedView.id == view_id, *self._visible(account_id, user_id))
        )

    async def list_visible(self, account_id: int, user_id: int | None, *, page: int,
                           page_size: int) -> tuple[Sequence[SavedView], int]:
        """Own and shared views by name (2 queries: page + count)."""
        conditions = self._visible(account_id, user_id)
        total = await self.session.scalar(select(func.count()).select_from(SavedView).where(*conditions))
        rows = await self.session.scalars(
            select(SavedView).where(*conditions).order_by(func.lower(SavedView.name), SavedView.id)
            .limit(page_size).offset((page - 1) * page_size)
        )
        return list(rows), int(total or 0)

    async def add(self, view: SavedView) -> SavedView:
        self.session.add(view)
        await self.session.flush()
        await self.session.refresh(view)
        return view

    async def delete(self, view: SavedView) -> None:
        await self.session.delete(view)
        await self.session.flush()
