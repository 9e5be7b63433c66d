"""Reference data that tickets point at: users, teams, ticket types, ticket categories."""

from __future__ import annotations

from typing import Any, Generic, Sequence, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.models import Team, TeamMember, TicketCategory, TicketType, User

Row = TypeVar("Row", User, Team, TicketType, TicketCategory)


class ReferenceRepository(Generic[Row]):
    def __init__(self, session: AsyncSession, model: type[Row]) -> None:
        self.session = session
        self.model = model

    async def get(self, account_id: int, row_id: int) -> Row | None:
        if not is_storable_id(row_id):
            return None  # no such row can exist, and PostgreSQL would reject the number
        model: Any = self.model
        return await self.session.scalar(select(model).where(model.account_id == account_id, model.id == row_id))

    async def find_by_name(self, account_id: int, name: str) -> Row | None:
        model: Any = self.model
        return await self.session.scalar(
            select(model).where(model.account_id == account_id, func.lower(model.name) == name.lower())
        )

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[Sequence[Row], int]:
        model: Any = self.model
        statement = select(model).where(model.account_id == account_id)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(statement.order_by(model.id).limit(page_size).offset((page - 1) * page_size))
        return list(rows), int(total or 0)

    async def add(self, row: Row) -> Row:
        self.session.add(row)
        await self.session.flush()
        return row

    async def delete(self, row: Row) -> None:
        await self.session.delete(row)
        await self.session.flush()


class TeamMemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def members(self, team_ids: list[int]) -> dict[int, list[int]]:
        result: dict[int, list[int]] = {team_id: [] for team_id in team_ids}
        if not team_ids:
            return result
        rows = await self.session.execute(
            select(TeamMember.team_id, TeamMember.user_id)
            .where(TeamMember.team_id.in_(team_ids))
            .order_by(TeamMember.user_id)
        )
        for team_id, user_id in rows:
            result[team_id].append(user_id)
        return result

    async def replace(self, team_id: int, user_ids: list[int]) -> None:
        await self.session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
        for user_id in dict.fromkeys(user_ids):
            self.session.add(TeamMember(team_id=team_id, user_id=user_id))
        await self.session.flush()
