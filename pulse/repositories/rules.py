"""The account-wide rules the tickets' agendas read: their generation, the agenda probes, and
the open tickets a change must reach."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.tickets import TicketStatus
from pulse.models import Account, AgendaProbe, Ticket


class RulesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bump_generation(self, account_id: int) -> int:
        """The account's next rules generation; the row stays locked ``FOR UPDATE`` until the
        commit. That lock, taken before the bump, is what waits for in-flight creates (they hold
        the row ``FOR KEY SHARE``, ``TicketStore.account_for_create``) and makes creates started
        after it wait for the commit: the bump's ``UPDATE`` alone changes no key column, so it
        would take only ``FOR NO KEY UPDATE``, which ``KEY SHARE`` does not conflict with."""
        await self.session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
        return int(await self.session.scalar(
            update(Account).where(Account.id == account_id)
            .values(rules_generation=Account.rules_generation + 1).returning(Account.rules_generation)))

    async def add_probe(self, account_id: int, after_minutes: int) -> int:
        return int(await self.session.scalar(
            insert(AgendaProbe).values(account_id=account_id, after_minutes=after_minutes).returning(AgendaProbe.id)))

    async def open_ticket_ids(self, account_id: int, after_id: int, limit: int) -> list[int]:
        rows = await self.session.scalars(
            select(Ticket.id).where(Ticket.account_id == account_id, Ticket.id > after_id,
                                    Ticket.deleted_at.is_(None), Ticket.status != TicketStatus.CLOSED.value)
            .order_by(Ticket.id).limit(limit))
        return list(rows)
