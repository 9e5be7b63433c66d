"""Every ticket, comment and timeline query."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ticket_query import TicketQuery
from pulse.models import Ticket, TicketComment, TimelineEvent


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_id(self) -> int:
        """Reserve a ticket id before its workflow starts (the workflow id contains it)."""
        return (await self.session.execute(text("SELECT nextval('tickets_id_seq')"))).scalar_one()

    async def get(self, account_id: int, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        query = select(Ticket).where(
            Ticket.account_id == account_id, Ticket.id == ticket_id, Ticket.deleted_at.is_(None)
        )
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def get_by_number(self, account_id: int, number: int) -> Ticket | None:
        return await self.session.scalar(
            select(Ticket).where(
                Ticket.account_id == account_id, Ticket.number == number, Ticket.deleted_at.is_(None)
            )
        )

    async def add(self, ticket: Ticket) -> Ticket:
        self.session.add(ticket)
        await self.session.flush()
        return ticket

    def _filtered(self, account_id: int, query: TicketQuery) -> Select[Any]:
        statement = select(Ticket).where(Ticket.account_id == account_id, Ticket.deleted_at.is_(None))
        for field_filter in query.equals:
            column = getattr(Ticket, field_filter.column)
            if len(field_filter.values) == 1:
                statement = statement.where(column == field_filter.values[0])
            else:
                statement = statement.where(column.in_(field_filter.values))
        for range_filter in query.ranges:
            column = getattr(Ticket, range_filter.column)
            if range_filter.after is not None:
                statement = statement.where(column >= range_filter.after)
            if range_filter.before is not None:
                statement = statement.where(column < range_filter.before)
        if query.tags_all:
            statement = statement.where(Ticket.tags.contains(query.tags_all))
        if query.unassigned is True:
            statement = statement.where(
                Ticket.assigned_to_user_id.is_(None), Ticket.assigned_to_team_id.is_(None)
            )
        elif query.unassigned is False:
            statement = statement.where(
                (Ticket.assigned_to_user_id.is_not(None)) | (Ticket.assigned_to_team_id.is_not(None))
            )
        if query.custom_fields:
            statement = statement.where(Ticket.custom_fields.contains(query.custom_fields))
        return statement

    async def list(self, account_id: int, query: TicketQuery) -> tuple[Sequence[Ticket], int]:
        """One page and the total. Default order: newest first; ``id`` is always the last key."""
        statement = self._filtered(account_id, query)
        order: list[Any] = []
        for key in query.sort or []:
            column = getattr(Ticket, key.column)
            order.append(column.desc().nulls_last() if key.descending else column.asc().nulls_last())
        if not query.sort:
            order.append(Ticket.created_at.desc())
        last_desc = query.sort[-1].descending if query.sort else True
        order.append(Ticket.id.desc() if last_desc else Ticket.id.asc())
        page = await self.session.scalars(
            statement.order_by(*order).limit(query.page_size).offset(query.offset)
        )
        rows = list(page)
        if query.page == 1 and len(rows) < query.page_size:
            total = len(rows)
        else:
            total = await self.session.scalar(
                select(func.count()).select_from(statement.with_only_columns(Ticket.id).subquery())
            )
        return rows, int(total or 0)


class CommentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, comment: TicketComment) -> TicketComment:
        self.session.add(comment)
        await self.session.flush()
        return comment

    async def list(
        self, ticket_id: int, *, include_internal: bool, page: int, page_size: int
    ) -> tuple[Sequence[TicketComment], int]:
        statement = select(TicketComment).where(TicketComment.ticket_id == ticket_id)
        if not include_internal:
            statement = statement.where(TicketComment.is_internal.is_(False))
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(
            statement.order_by(TicketComment.created_at, TicketComment.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return list(rows), int(total or 0)


class TimelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, event: TimelineEvent) -> None:
        self.session.add(event)

    async def list(self, ticket_id: int, *, page: int, page_size: int) -> tuple[Sequence[TimelineEvent], int]:
        statement = select(TimelineEvent).where(TimelineEvent.ticket_id == ticket_id)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(
            statement.order_by(TimelineEvent.created_at, TimelineEvent.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return list(rows), int(total or 0)
