"""The numbers an operator's dashboard shows a support lead, read at scrape time: each is one
grouped count over a partial index (migration 0020) whose size is the open tickets or the failing
deliveries, so a scrape stays cheap however many tickets are stored."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.models import NotificationDelivery, Ticket

CLOSED_STATUSES = ("resolved", "closed")


class OperationsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_tickets_by_sla_status(self) -> list[tuple[int, str, int]]:
        """(account id, SLA status or ``none``, count) of tickets not resolved, closed or deleted."""
        rows = await self.session.execute(
            select(Ticket.account_id, func.coalesce(Ticket.sla_status, "none"), func.count())
            .where(Ticket.deleted_at.is_(None), Ticket.status.not_in(CLOSED_STATUSES))
            .group_by(Ticket.account_id, Ticket.sla_status)
        )
        return [(int(account), str(status), int(count)) for account, status, count in rows]

    async def failing_deliveries(self) -> list[tuple[int, str, bool, int]]:
        """(account id, channel, still retried, count) of deliveries whose last attempt failed."""
        rows = await self.session.execute(
            select(NotificationDelivery.account_id, NotificationDelivery.channel, NotificationDelivery.retryable,
                   func.count())
            .where(NotificationDelivery.status == "failed")
            .group_by(NotificationDelivery.account_id, NotificationDelivery.channel, NotificationDelivery.retryable)
        )
        return [(int(account), str(channel), bool(retryable), int(count)) for account, channel, retryable, count in rows]
