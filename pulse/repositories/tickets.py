"""Every ticket, comment and timeline query."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ticket_query import TicketQuery
from pulse.models import IdempotencyKey, Ticket, TicketComment, TimelineEvent
from pulse.repositories.idempotency import KEY_LIFETIME
from pulse.repositories.ticket_lists import TicketLists


CREATE_SCOPE = "tickets.create"


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def allocate(self, account_id: int) -> tuple[int, int]:
        """Reserve a ticket id and the account's next ``PULSE-<n>`` before the workflow starts (its
        id and search attributes hold them). One statement; the account row is locked only for
        this short transaction. A create that then fails leaves a gap in the numbers."""
        row = (await self.session.execute(text(
            "WITH n AS (UPDATE accounts SET last_ticket_number = last_ticket_number + 1 WHERE id = :account_id "
            "RETURNING last_ticket_number) SELECT nextval('tickets_id_seq'), n.last_ticket_number FROM n"
        ), {"account_id": account_id})).one()
        return int(row[0]), int(row[1])

    async def claim_create_key(self, account_id: int, key: str, request_hash: str, ticket_id: int,
                               number: int) -> tuple[int, int, str] | None:
        """Bind an ``Idempotency-Key`` to the ticket about to be created; the ticket an earlier
        request bound it to (id, number, that request's hash) when it was there first (and is not
        older than 24 h)."""
        claimed = await self.session.scalar(
            pg_insert(IdempotencyKey).values(account_id=account_id, scope=CREATE_SCOPE, key=key, resource_id=ticket_id,
                                             resource_number=number, request_hash=request_hash)
            .on_conflict_do_update(
                index_elements=["account_id", "scope", "key"],
                set_={"resource_id": ticket_id, "resource_number": number, "request_hash": request_hash,
                      "created_at": func.now()},
                where=IdempotencyKey.created_at < func.now() - KEY_LIFETIME)
            .returning(IdempotencyKey.resource_id))
        if claimed is not None:
            return None
        earlier = (await self.session.execute(select(
            IdempotencyKey.resource_id, IdempotencyKey.resource_number, IdempotencyKey.request_hash).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.scope == CREATE_SCOPE, IdempotencyKey.key == key,
        ))).one()
        return int(earlier[0]), int(earlier[1] or 0), str(earlier[2] or "")

    async def bound_create_key(self, account_id: int, key: str) -> tuple[int, int, str] | None:
        """The ticket (id, number) a live ``Idempotency-Key`` is bound to, and the hash of the
        request that bound it."""
        row = (await self.session.execute(select(
            IdempotencyKey.resource_id, IdempotencyKey.resource_number, IdempotencyKey.request_hash).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.scope == CREATE_SCOPE, IdempotencyKey.key == key,
            IdempotencyKey.created_at >= func.now() - KEY_LIFETIME, IdempotencyKey.resource_id.is_not(None),
        ))).one_or_none()
        return None if row is None else (int(row[0]), int(row[1] or 0), str(row[2] or ""))

    async def release_create_key(self, account_id: int, key: str, ticket_id: int) -> None:
        """Free a key whose create failed for good (a 4xx: no ticket was made)."""
        await self.session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.scope == CREATE_SCOPE, IdempotencyKey.key == key,
            IdempotencyKey.resource_id == ticket_id))

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
