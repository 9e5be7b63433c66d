"""Every query of the Maverick integration: the account's config, its category mappings, the
"Unmapped Maverick Tickets" type, and the webhook events received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Conflict
from pulse.domain.ids import is_storable_id
from pulse.domain.maverick import UNMAPPED_TYPE_DESCRIPTION, UNMAPPED_TYPE_NAME, SyncDirection
from pulse.models import TicketType
from pulse.models.maverick import MaverickCategoryMapping, MaverickConfig, MaverickWebhookEvent

UNIQUE_VIOLATION = "23505"


class MaverickConfigRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: int, *, for_update: bool = False) -> MaverickConfig | None:
        statement = select(MaverickConfig).where(MaverickConfig.account_id == account_id)
        if for_update:
            statement = statement.with_for_update()
        return await self.session.scalar(statement.execution_options(populate_existing=True))

    async def scheduled_account_ids(self) -> list[int]:
        """The accounts whose config wants a sync schedule (enabled, auto-sync, pulling)."""
        rows = await self.session.scalars(select(MaverickConfig.account_id).where(
            MaverickConfig.enabled.is_(True), MaverickConfig.auto_sync.is_(True),
            MaverickConfig.sync_direction != SyncDirection.OUTBOUND.value).order_by(MaverickConfig.account_id))
        return list(rows)

    async def save(self, account_id: int, values: dict[str, Any]) -> MaverickConfig:
        """Insert the account's row or replace its values, bumping ``version``."""
        statement = pg_insert(MaverickConfig).values(account_id=account_id, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[MaverickConfig.account_id],
            set_={**{name: statement.excluded[name] for name in values},
                  "version": MaverickConfig.version + 1, "updated_at": func.now()},
        ).returning(MaverickConfig)
        row = await self.session.scalar(statement, execution_options={"populate_existing": True})
        assert row is not None
        return row


class MaverickMappingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, account_id: int) -> list[MaverickCategoryMapping]:
        rows = await self.session.scalars(select(MaverickCategoryMapping)
                                          .where(MaverickCategoryMapping.account_id == account_id)
                                          .order_by(MaverickCategoryMapping.maverick_category_id))
        return list(rows)

    async def get(self, account_id: int, mapping_id: int) -> MaverickCategoryMapping | None:
        if not is_storable_id(mapping_id):
            return None
        return await self.session.scalar(select(MaverickCategoryMapping).where(
            MaverickCategoryMapping.account_id == account_id, MaverickCategoryMapping.id == mapping_id))

    async def for_category(self, account_id: int, maverick_category_id: int) -> MaverickCategoryMapping | None:
        return await self.session.scalar(select(MaverickCategoryMapping).where(
            MaverickCategoryMapping.account_id == account_id,
            MaverickCategoryMapping.maverick_category_id == maverick_category_id))

    async def add(self, row: MaverickCategoryMapping) -> MaverickCategoryMapping:
        self.session.add(row)
        await self.flush(row.maverick_category_id)
        return row

    async def flush(self, maverick_category_id: int) -> None:
        """Write pending changes; a second mapping of one Maverick category is a 409 ``duplicate``."""
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as error:
            if getattr(error.orig, "sqlstate", None) == UNIQUE_VIOLATION:
                raise Conflict(f"Maverick category {maverick_category_id} is mapped already; change that "
                               "mapping instead", code="duplicate") from None
            raise

    async def delete(self, row: MaverickCategoryMapping) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def unmapped_type_id(self, account_id: int) -> int:
        """The account's "Unmapped Maverick Tickets" type, made on first use (concurrent first
        uses make one: the name is unique per account)."""
        lookup = select(TicketType.id).where(
            TicketType.account_id == account_id, func.lower(TicketType.name) == UNMAPPED_TYPE_NAME.lower(),
        ).order_by(TicketType.id).limit(1)
        type_id = await self.session.scalar(lookup)
        if type_id is None:
            await self.session.execute(pg_insert(TicketType).values(
                account_id=account_id, name=UNMAPPED_TYPE_NAME, description=UNMAPPED_TYPE_DESCRIPTION,
            ).on_conflict_do_nothing())
            type_id = await self.session.scalar(lookup)
        assert type_id is not None
        return int(type_id)


class MaverickWebhookEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, account_id: int, event_id: str, event_type: str, occurred_at: datetime | None,
                     data: dict[str, Any]) -> bool:
        """Store a verified event once; True when it is new, False for a repeat (counted)."""
        inserted = await self.session.scalar(pg_insert(MaverickWebhookEvent).values(
            account_id=account_id, event_id=event_id, event_type=event_type, occurred_at=occurred_at, data=data,
        ).on_conflict_do_nothing().returning(MaverickWebhookEvent.event_id))
        if inserted is not None:
            return True
        await self.session.execute(update(MaverickWebhookEvent).where(
            MaverickWebhookEvent.account_id == account_id, MaverickWebhookEvent.event_id == event_id,
        ).values(deliveries=MaverickWebhookEvent.deliveries + 1))
        return False

    async def get(self, account_id: int, event_id: str) -> MaverickWebhookEvent | None:
        return await self.session.scalar(select(MaverickWebhookEvent).where(
            MaverickWebhookEvent.account_id == account_id, MaverickWebhookEvent.event_id == event_id)
            .execution_options(populate_existing=True))
