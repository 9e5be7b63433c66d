from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.models import Account, AccountMember, ApiToken, User


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str) -> Account:
        account = Account(name=name)
        self.session.add(account)
        await self.session.flush()
        return account

    async def get(self, account_id: int) -> Account | None:
        return await self.session.get(Account, account_id)

    async def is_member(self, account_id: int, user_id: int) -> bool:
        user_account = await self.session.scalar(select(User.account_id).where(User.id == user_id))
        if user_account == account_id:
            return True
        found = await self.session.scalar(
            select(AccountMember.user_id).where(
                AccountMember.account_id == account_id, AccountMember.user_id == user_id
            )
        )
        return found is not None


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash(self, token_hash: str) -> tuple[ApiToken, str | None, int | None] | None:
        """The token with its user's role and account (one query)."""
        row = (await self.session.execute(
            select(ApiToken, User.role, User.account_id).outerjoin(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash))).first()
        return (row[0], row[1], row[2]) if row is not None else None

    async def touch(self, token_id: int, *, every_seconds: int) -> None:
        """``last_used_at`` = now, unless it was set less than ``every_seconds`` ago."""
        await self.session.execute(
            update(ApiToken).where(
                ApiToken.id == token_id,
                ApiToken.last_used_at.is_(None)
                | (ApiToken.last_used_at < func.now() - text(f"interval '{int(every_seconds)} seconds'")),
            ).values(last_used_at=func.now()).execution_options(synchronize_session=False))

    async def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def list(self, account_id: int) -> list[ApiToken]:
        rows = await self.session.scalars(
            select(ApiToken)
            .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
        )
        return list(rows)

    async def get(self, account_id: int, token_id: int) -> ApiToken | None:
        if not is_storable_id(token_id):
            return None
        return await self.session.scalar(
            select(ApiToken).where(
                ApiToken.account_id == account_id, ApiToken.id == token_id, ApiToken.revoked_at.is_(None)
            )
        )
