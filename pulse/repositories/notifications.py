"""Every query of notifications: channel settings, delivery records, in-app notifications and the
recipients an outbox event names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.models import Notification, NotificationDelivery, NotificationSettings, Team, TeamMember, Ticket, TicketEvent, User

OPEN_STATUSES = ("pending", "failed")


class NotificationSettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: int, *, for_update: bool = False) -> NotificationSettings | None:
        statement = select(NotificationSettings).where(NotificationSettings.account_id == account_id)
        if for_update:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    async def save(self, account_id: int, channels: dict[str, dict[str, Any] | None]) -> NotificationSettings:
        """Insert the account's row or replace its channels, bumping ``version``."""
        statement = pg_insert(NotificationSettings).values(account_id=account_id, **channels)
        statement = statement.on_conflict_do_update(
            index_elements=[NotificationSettings.account_id],
            set_={**{name: statement.excluded[name] for name in channels},
                  "version": NotificationSettings.version + 1, "updated_at": func.now()},
        ).returning(NotificationSettings)
        row = await self.session.scalar(statement, execution_options={"populate_existing": True})
        assert row is not None
        return row


class RecipientRepository:
    """Who an event's notification reaches: users and teams of the event's account."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def event(self, event_id: int) -> TicketEvent | None:
        return await self.session.get(TicketEvent, event_id) if is_storable_id(event_id) else None

    async def ticket(self, account_id: int, ticket_id: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.account_id == account_id, Ticket.id == ticket_id))

    async def active_users(self, account_id: int, user_ids: Sequence[int]) -> list[User]:
        ids = [user_id for user_id in user_ids if is_storable_id(user_id)]
        if not ids:
            return []
        rows = await self.session.scalars(select(User).where(
            User.account_id == account_id, User.id.in_(ids), User.is_active.is_(True)).order_by(User.id))
        return list(rows)

    async def team(self, account_id: int, team_id: int) -> Team | None:
        if not is_storable_id(team_id):
            return None
        return await self.session.scalar(select(Team).where(Team.account_id == account_id, Team.id == team_id))

    async def team_member_ids(self, team_id: int) -> list[int]:
        rows = await self.session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)
                                          .order_by(TeamMember.user_id))
        return list(rows)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, *, account_id: int, ticket_id: int | None, event_id: int, channel: str,
                     reason: str | None, targets: Sequence[str]) -> None:
        """A ``pending`` row per target not recorded yet (a retry finds the rows it left)."""
        if targets:
            await self.session.execute(pg_insert(NotificationDelivery).values([
                {"account_id": account_id, "ticket_id": ticket_id, "event_id": event_id, "channel": channel,
                 "target": target, "reason": reason} for target in targets
            ]).on_conflict_do_nothing())

    async def rows(self, event_id: int, channel: str) -> list[NotificationDelivery]:
        rows = await self.session.scalars(select(NotificationDelivery).where(
            NotificationDelivery.event_id == event_id, NotificationDelivery.channel == channel)
            .order_by(NotificationDelivery.id).execution_options(populate_existing=True))
        return list(rows)

    async def skip_open(self, event_id: int, channel: str, why: str) -> None:
        await self.session.execute(update(NotificationDelivery).where(
            NotificationDelivery.event_id == event_id, NotificationDelivery.channel == channel,
            NotificationDelivery.status.in_(OPEN_STATUSES),
        ).values(status="skipped", last_error=why, locked_until=None))

    async def mark_all_sent(self, event_id: int, channel: str, targets: Sequence[str]) -> list[str]:
        """For in-app: the rows are written in the same transaction as the notifications. The
        targets marked now (not those sent before)."""
        marked = await self.session.scalars(update(NotificationDelivery).where(
            NotificationDelivery.event_id == event_id, NotificationDelivery.channel == channel,
            NotificationDelivery.target.in_(list(targets)), NotificationDelivery.status.in_(OPEN_STATUSES),
        ).values(status="sent", attempts=NotificationDelivery.attempts + 1, sent_at=func.now(), locked_until=None)
            .returning(NotificationDelivery.target))
        return list(marked)

    async def claim(self, delivery_ids: Sequence[int], lease: timedelta) -> set[int]:
        """Take the open rows for an attempt: count it and hold a lease, so a concurrent attempt of
        the same activity (a timed-out one still running) leaves them alone. The ids taken (not
        those already sent, failed for good, or leased by another attempt)."""
        if not delivery_ids:
            return set()
        claimed = await self.session.scalars(update(NotificationDelivery).where(
            NotificationDelivery.id.in_(list(delivery_ids)), NotificationDelivery.status.in_(OPEN_STATUSES),
            NotificationDelivery.retryable.is_(True),
            (NotificationDelivery.locked_until.is_(None)) | (NotificationDelivery.locked_until < func.now()),
        ).values(attempts=NotificationDelivery.attempts + 1, locked_until=func.now() + lease)
            .returning(NotificationDelivery.id).execution_options(synchronize_session=False))
        return set(claimed)

    async def mark_sent(self, delivery_id: int) -> None:
        await self.session.execute(update(NotificationDelivery).where(NotificationDelivery.id == delivery_id)
                                   .values(status="sent", sent_at=func.now(), locked_until=None)
                                   .execution_options(synchronize_session=False))

    async def mark_failed(self, delivery_id: int, error: str, *, retryable: bool) -> None:
        await self.session.execute(update(NotificationDelivery).where(NotificationDelivery.id == delivery_id)
                                   .values(status="failed", last_error=error[:2000], retryable=retryable,
                                           locked_until=None).execution_options(synchronize_session=False))

    async def list(self, account_id: int, *, ticket_id: int | None, channel: str | None, status: str | None,
                   page: int, page_size: int) -> tuple[list[NotificationDelivery], int]:
        """Newest first."""
        statement = select(NotificationDelivery).where(NotificationDelivery.account_id == account_id)
        if ticket_id is not None:
            statement = statement.where(NotificationDelivery.ticket_id == ticket_id)
        if channel is not None:
            statement = statement.where(NotificationDelivery.channel == channel)
        if status is not None:
            statement = statement.where(NotificationDelivery.status == status)
        rows = list(await self.session.scalars(
            statement.order_by(NotificationDelivery.id.desc()).limit(page_size).offset((page - 1) * page_size)))
        total = await _total(self.session, statement, page, page_size, len(rows))
        return rows, total


class InAppNotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        """Once per (event, user, kind); the table's trigger publishes each new row (pg_notify)
        in this transaction."""
        if rows:
            await self.session.execute(pg_insert(Notification).values(rows).on_conflict_do_nothing())

    async def list(self, account_id: int, user_id: int, *, unread: bool | None, page: int,
                   page_size: int) -> tuple[list[Notification], int]:
        """Newest first."""
        statement = select(Notification).where(Notification.account_id == account_id, Notification.user_id == user_id)
        if unread is True:
            statement = statement.where(Notification.read_at.is_(None))
        elif unread is False:
            statement = statement.where(Notification.read_at.is_not(None))
        rows = list(await self.session.scalars(
            statement.order_by(Notification.id.desc()).limit(page_size).offset((page - 1) * page_size)))
        total = await _total(self.session, statement, page, page_size, len(rows))
        return rows, total

    async def get(self, notification_id: int) -> Notification | None:
        if not is_storable_id(notification_id):
            return None
        return await self.session.get(Notification, notification_id, populate_existing=True)

    async def mark_read(self, account_id: int, user_id: int, notification_id: int) -> Notification | None:
        """Mark one of the user's notifications read (once: the first time is kept)."""
        if not is_storable_id(notification_id):
            return None
        await self.session.execute(update(Notification).where(
            Notification.id == notification_id, Notification.account_id == account_id,
            Notification.user_id == user_id, Notification.read_at.is_(None),
        ).values(read_at=func.now()))
        return await self.session.scalar(select(Notification).where(
            Notification.id == notification_id, Notification.account_id == account_id,
            Notification.user_id == user_id).execution_options(populate_existing=True))

    async def latest_id(self, account_id: int, user_id: int) -> int:
        latest = await self.session.scalar(select(func.max(Notification.id)).where(
            Notification.account_id == account_id, Notification.user_id == user_id))
        return int(latest or 0)

    async def after(self, account_id: int, user_id: int, after_id: int, *, limit: int) -> list[Notification]:
        """The user's notifications with an id above ``after_id``, oldest first (a stream's catch-up)."""
        rows = await self.session.scalars(select(Notification).where(
            Notification.account_id == account_id, Notification.user_id == user_id, Notification.id > after_id,
        ).order_by(Notification.id).limit(limit))
        return list(rows)


async def _total(session: AsyncSession, statement: Any, page: int, page_size: int, found: int) -> int:
    """The page tells the total when it is the first and not full; else count."""
    if page == 1 and found < page_size:
        return found
    return int(await session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0)
