"""Reference data that tickets point at: users, teams, ticket types, ticket categories."""

from __future__ import annotations

from typing import Any, Generic, Sequence, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Conflict
from pulse.domain.ids import is_storable_id
from pulse.models import Team, TeamMember, TicketCategory, TicketType, User

Row = TypeVar("Row", User, Team, TicketType, TicketCategory)

LABELS = {User: "user", Team: "team", TicketType: "ticket type", TicketCategory: "ticket category"}
UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION = "23505", "23503"


class ReferenceRepository(Generic[Row]):
    def __init__(self, session: AsyncSession, model: type[Row]) -> None:
        self.session = session
        self.model = model

    async def get(self, account_id: int, row_id: int) -> Row | None:
        if not is_storable_id(row_id):
            return None  # no such row can exist, and PostgreSQL would reject the number
        model: Any = self.model
        return await self.session.scalar(select(model).where(model.account_id == account_id, model.id == row_id))

    async def existing_ids(self, account_id: int, row_ids: Sequence[int]) -> set[int]:
        """Which of ``row_ids`` are rows of the account: one query, however many ids."""
        wanted = sorted({row_id for row_id in row_ids if is_storable_id(row_id)})
        if not wanted:
            return set()
        model: Any = self.model
        return set(await self.session.scalars(select(model.id).where(model.account_id == account_id,
                                                                    model.id.in_(wanted))))

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
        await self.save(row)
        return row

    async def save(self, row: Row, *, deleting: bool = False) -> None:
        """Write pending changes. A name another row of the account has is a 409 ``duplicate``;
        deleting a row that tickets (or teams, tokens) still point at is a 409 ``in_use``."""
        name, row_id = row.name, row.id  # a failed flush expires the row: read them first
        try:
            await self.session.flush()
        except IntegrityError as error:
            label = LABELS.get(self.model, "record")
            state = getattr(error.orig, "sqlstate", None)
            if state == UNIQUE_VIOLATION:
                raise Conflict(f"a {label} named {name!r} already exists; choose another name",
                               code="duplicate") from None
            if state == FOREIGN_KEY_VIOLATION and deleting:
                raise Conflict(f"{label} {row_id} is in use (tickets, teams or tokens point at it); "
                               "reassign or remove them first", code="in_use") from None
            raise

    async def delete(self, row: Row) -> None:
        await self.session.delete(row)
        await self.save(row, deleting=True)


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
