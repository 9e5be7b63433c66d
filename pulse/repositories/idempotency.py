"""``Idempotency-Key`` of a create: the first request's resource is replayed for 24 hours."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import ValidationFailed
from pulse.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, account_id: int, scope: str, key: str, request_hash: str) -> int | None:
        """Claim ``key`` in this transaction. Returns the id of what an earlier request with the
        same key created (replay it), or None when the key is this request's to use; a 422 when
        that request had another body.

        A concurrent request with the same key waits on the uncommitted claim (the unique index)
        and then sees its result. Two statements at most (insert; select when the key exists)."""
        claimed = await self.session.scalar(
            insert(IdempotencyKey)
            .values(account_id=account_id, scope=scope, key=key, request_hash=request_hash)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if claimed is not None:
            return None
        earlier = await self.session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.account_id == account_id, IdempotencyKey.scope == scope,
                                         IdempotencyKey.key == key).with_for_update()
        )
        if earlier is None:  # removed meanwhile: claim it afresh
            return await self.claim(account_id, scope, key, request_hash)
        if earlier.created_at < await self.session.scalar(select(func.now() - KEY_LIFETIME)):
            await self.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.account_id == account_id, IdempotencyKey.scope == scope, IdempotencyKey.key == key)
                .values(created_at=func.now(), resource_id=None, request_hash=request_hash)
            )
            return None
        if earlier.request_hash and earlier.request_hash != request_hash:
            raise ValidationFailed("this Idempotency-Key was used for a different request", details=[
                {"field": "Idempotency-Key", "message": "already used with another body within 24 hours"}])
        return earlier.resource_id

    async def remember(self, account_id: int, scope: str, key: str, resource_id: int) -> None:
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.account_id == account_id, IdempotencyKey.scope == scope, IdempotencyKey.key == key)
            .values(resource_id=resource_id)
        )
