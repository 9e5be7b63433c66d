"""Every ticket, comment and timeline query."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ticket_query import TicketQuery
from pulse.models import Ticket, TicketComment, TimelineEvent
from pulse.repositories.ticket_lists import TicketLists


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
        """Tickets matching every filter of ``query`` except search (see ``TicketLists``)."""
        return select(Ticket).where(*TicketLists(self.session).conditions(account_id, query))

    async def list(self, account_id: int, query: TicketQuery, *,
                   include_internal: bool = False) -> tuple[Sequence[Ticket], int]:
        """One page and the total (see ``TicketLists.page`` for search, snippets and estimates)."""
        page = await TicketLists(self.session).page(account_id, query, include_internal=include_internal)
        return page.tickets, page.total


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
