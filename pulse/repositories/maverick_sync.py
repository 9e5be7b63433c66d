"""Every query of the inbound sync: the links from Maverick tickets to Pulse tickets, the sync
runs, and the account's stored cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.domain.maverick_sync import FIELDS_VERSION
from pulse.models import OutboxDelivery, TicketComment, TicketEvent, TimelineEvent
from pulse.models.maverick import MaverickConfig, MaverickSyncRun, MaverickTicketLink
from pulse.models.tables import Account

TICKET_ID_SEQUENCE = "tickets_id_seq"  # as TicketRepository.allocate


class MaverickLinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: int, maverick_ticket_id: str) -> MaverickTicketLink | None:
        return await self.session.scalar(select(MaverickTicketLink).where(
            MaverickTicketLink.account_id == account_id, MaverickTicketLink.maverick_ticket_id == maverick_ticket_id,
        ).execution_options(populate_existing=True))

    async def reserve(self, account_id: int, maverick_ticket_id: str, *,
                      looked_up: bool = False) -> tuple[MaverickTicketLink, bool]:
        """The link of a Maverick ticket, reserving a Pulse ticket id and number for it the first
        time (True: reserved now): concurrent first sightings agree on one (the loser's
        reservation leaves a gap in the numbers, as any refused create does). ``looked_up``: the
        caller has just found no link, so it is not looked for again before the insert."""
        if not looked_up:
            found = await self.get(account_id, maverick_ticket_id)
            if found is not None:
                return found, False
        # The account's next number and the link in ONE statement: the account row (every create's
        # number) stays locked from it to the commit only, not across a second round trip — in
        # an import 14–20 applies at a time waited for that lock (pg_stat_activity, 5,000 tickets).
        allocated = (update(Account).where(Account.id == account_id)
                     .values(last_ticket_number=Account.last_ticket_number + 1)
                     .returning(Account.last_ticket_number).cte("allocated"))
        inserted = await self.session.scalar(pg_insert(MaverickTicketLink).from_select(
            ["account_id", "maverick_ticket_id", "ticket_id", "number"],
            select(literal(account_id, BigInteger), literal(maverick_ticket_id), func.nextval(TICKET_ID_SEQUENCE),
                   allocated.c.last_ticket_number),
        ).on_conflict_do_nothing(index_elements=[MaverickTicketLink.account_id, MaverickTicketLink.maverick_ticket_id])
            .returning(MaverickTicketLink))
        if inserted is not None:
            return inserted, True
        link = await self.get(account_id, maverick_ticket_id)
        assert link is not None
        return link, False

    async def remember(self, account_id: int, maverick_ticket_id: str, fields: dict[str, Any],
                       version: int | None = None) -> None:
        """A push: merge ``fields`` into what the link remembers (the status sent, the ids of the
        comments and documents created — so a pull does not bring them back); with ``version``,
        that remote version is the push's own echo and needs no pull."""
        await self._merge(account_id, maverick_ticket_id, fields, version, None)

    async def mark_applied(self, account_id: int, maverick_ticket_id: str, version: int | None, updated_at: datetime,
                           fields: dict[str, Any]) -> None:
        """A pull: remember what was applied — the fields (and comment and document ids) always,
        the remote version only when all of it was (``None``: some is left for the next pull)."""
        await self._merge(account_id, maverick_ticket_id, fields, version, updated_at)

    async def _merge(self, account_id: int, maverick_ticket_id: str, fields: dict[str, Any], version: int | None,
                     updated_at: datetime | None) -> None:
        """Under the link's row lock: scalar fields replaced, id lists united (a pull and a push
        of one ticket never drop each other's ids); the version never goes back."""
        link = await self.session.scalar(select(MaverickTicketLink).where(
            MaverickTicketLink.account_id == account_id, MaverickTicketLink.maverick_ticket_id == maverick_ticket_id,
        ).with_for_update().execution_options(populate_existing=True))
        if link is None:
            return
        stale = version is not None and version <= link.remote_version  # an older version, applied late
        merged = dict(link.remote_fields or {})
        # Fields of an older remote version than those held (a fields-only read got ahead) are not taken.
        held, incoming = merged.get(FIELDS_VERSION), fields.get(FIELDS_VERSION)
        older_fields = stale or (held is not None and incoming is not None and int(incoming) < int(held))
        for key, value in fields.items():
            if isinstance(value, list):
                merged[key] = sorted(set(merged.get(key) or []) | set(value))
            elif not older_fields:
                merged[key] = value
        values: dict[str, Any] = {"remote_fields": merged, "updated_at": func.now()}
        if version is not None and not stale:
            values["remote_version"] = version
            if updated_at is not None:
                values["remote_updated_at"] = updated_at
        await self.session.execute(update(MaverickTicketLink).where(
            MaverickTicketLink.account_id == account_id, MaverickTicketLink.maverick_ticket_id == maverick_ticket_id,
        ).values(**values))


class SyncRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(self, account_id: int, direction: str, trigger: str) -> MaverickSyncRun:
        row = MaverickSyncRun(account_id=account_id, direction=direction, trigger=trigger)
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def get(self, account_id: int, run_id: int) -> MaverickSyncRun | None:
        if not is_storable_id(run_id):
            return None
        return await self.session.scalar(select(MaverickSyncRun).where(
            MaverickSyncRun.account_id == account_id, MaverickSyncRun.id == run_id)
            .execution_options(populate_existing=True))

    async def add_counts(self, run_id: int, *, pulled: int, created: int, updated: int,
                         skipped: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        await self.session.execute(update(MaverickSyncRun).where(MaverickSyncRun.id == run_id).values(
            pulled=MaverickSyncRun.pulled + pulled, created=MaverickSyncRun.created + created,
            updated=MaverickSyncRun.updated + updated,
            skipped=_appended(MaverickSyncRun.skipped, skipped), errors=_appended(MaverickSyncRun.errors, errors),
        ))

    async def finish(self, run_id: int, status: str, errors: list[dict[str, Any]]) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": func.now()}
        if errors:
            values["errors"] = _appended(MaverickSyncRun.errors, errors)
        await self.session.execute(update(MaverickSyncRun).where(MaverickSyncRun.id == run_id,
                                                                 MaverickSyncRun.finished_at.is_(None)).values(**values))

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[list[MaverickSyncRun], int]:
        """Newest first."""
        statement = select(MaverickSyncRun).where(MaverickSyncRun.account_id == account_id)
        rows = list(await self.session.scalars(statement.order_by(MaverickSyncRun.id.desc())
                                               .limit(page_size).offset((page - 1) * page_size)))
        total = int(await self.session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        return rows, total


class SyncCursorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def advance(self, account_id: int, cursor: datetime) -> None:
        """The newest remote change applied; never moves back."""
        await self.session.execute(update(MaverickConfig).where(
            MaverickConfig.account_id == account_id,
            (MaverickConfig.sync_cursor.is_(None)) | (MaverickConfig.sync_cursor < cursor),
        ).values(sync_cursor=cursor))


def _appended(column: Any, items: list[dict[str, Any]]) -> Any:
    """``column || items`` (JSONB arrays)."""
    return column.op("||")(literal(items, JSONB))


class FieldChangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_changes(self, ticket_id: int, fields: tuple[str, ...], not_by: str) -> dict[str, datetime]:
        """When each field was last changed on the ticket by anyone but ``not_by`` (its timeline)."""
        rows = await self.session.execute(select(TimelineEvent.field, func.max(TimelineEvent.created_at)).where(
            TimelineEvent.ticket_id == ticket_id, TimelineEvent.field.in_(fields), TimelineEvent.actor != not_by,
            TimelineEvent.event_type != "sync_conflict",
        ).group_by(TimelineEvent.field))
        return {field: changed_at for field, changed_at in rows}


class MaverickPushRepository:
    """What an outbound push reads: the outbox event, whether it was pushed already, the comment."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def event(self, event_id: int) -> TicketEvent | None:
        return await self.session.get(TicketEvent, event_id) if is_storable_id(event_id) else None

    async def delivered(self, event_id: int, consumer: str) -> bool:
        found = await self.session.scalar(select(OutboxDelivery.event_id).where(
            OutboxDelivery.event_id == event_id, OutboxDelivery.consumer == consumer))
        return found is not None

    async def mark_delivered(self, event_id: int, consumer: str) -> None:
        await self.session.execute(pg_insert(OutboxDelivery).values(event_id=event_id, consumer=consumer)
                                   .on_conflict_do_nothing())

    async def comment(self, ticket_id: int, comment_id: int) -> TicketComment | None:
        if not is_storable_id(comment_id):
            return None
        return await self.session.scalar(select(TicketComment).where(
            TicketComment.ticket_id == ticket_id, TicketComment.id == comment_id))
