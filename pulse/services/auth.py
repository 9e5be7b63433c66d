"""Bearer tokens: generated once, stored as SHA-256, resolved to a principal per request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from pulse.domain.ids import is_storable_id
from pulse.domain.settings_records import TokenRecord
from pulse.domain.tickets import Permission
from pulse.models import ApiToken, User
from pulse.repositories.accounts import AccountRepository, TokenRepository
from pulse.repositories.reference import ReferenceRepository

ALL_PERMISSIONS = [p.value for p in Permission]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_value() -> str:
    return "pulse_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    token_id: int
    user_id: int | None
    account_id: int
    permissions: frozenset[str]
    is_platform_admin: bool

    def has(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.has(permission):
            raise Forbidden(f"this token lacks the {permission.value} permission", code="missing_permission")


async def authenticate(session: AsyncSession, authorization: str | None, account_header: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    token = await TokenRepository(session).by_hash(hash_token(authorization[7:].strip()))
    now = datetime.now(timezone.utc)
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthorized("the token is invalid, revoked or expired")
    account_id = token.account_id
    if account_header:
        try:
            requested = int(account_header)
        except ValueError:
            raise Forbidden("x-account-id must be the id of one of your accounts") from None
        if not is_storable_id(requested):
            raise Forbidden("you do not belong to that account")
        if requested != token.account_id:
            member = token.user_id is not None and await AccountRepository(session).is_member(requested, token.user_id)
            if not (member or token.is_platform_admin):
                raise Forbidden("you do not belong to that account")
            if await AccountRepository(session).get(requested) is None:
                raise Forbidden("you do not belong to that account")
            account_id = requested
    return Principal(
        token_id=token.id,
        user_id=token.user_id,
        account_id=account_id,
        permissions=frozenset(token.permissions),
        is_platform_admin=token.is_platform_admin,
    )


async def issue_token(
    session: AsyncSession,
    *,
    account_id: int,
    user_id: int | None,
    name: str,
    permissions: list[str],
    is_platform_admin: bool = False,
    value: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned once and never stored."""
    plain = value or new_token_value()
    token = ApiToken(
        account_id=account_id,
        user_id=user_id,
        name=name,
        token_hash=hash_token(plain),
        token_prefix=plain[:12],
        permissions=list(dict.fromkeys(permissions)),
        is_platform_admin=is_platform_admin,
    )
    await TokenRepository(session).add(token)
    return token, plain


async def create_account_with_admin(session: AsyncSession, name: str, *, admin_token: str | None = None,
                                    platform_admin: bool = False) -> tuple[int, int, str]:
    """A new account, its admin user and an admin token with every permission."""
    account = await AccountRepository(session).create(name)
    admin = User(account_id=account.id, name=f"{name} admin", role="admin")
    session.add(admin)
    await session.flush()
    _, plain = await issue_token(
        session,
        account_id=account.id,
        user_id=admin.id,
        name="admin",
        permissions=ALL_PERMISSIONS,
        is_platform_admin=platform_admin,
        value=admin_token,
    )
    return account.id, admin.id, plain


class TokenService:
    """The API tokens of one account (``/api/tokens``): listed without their secret."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tokens = TokenRepository(session)

    async def create(self, account_id: int, *, user_id: int | None, name: str,
                     permissions: list[str]) -> tuple[TokenRecord, str]:
        """A new token of a user of the account; the plain value is returned once."""
        if user_id is not None and await ReferenceRepository(self.session, User).get(account_id, user_id) is None:
            raise ValidationFailed("unknown user",
                                   details=[{"field": "userId", "message": f"no user {user_id} in this account"}])
        token, plain = await issue_token(self.session, account_id=account_id, user_id=user_id, name=name,
                                         permissions=permissions)
        await self.session.refresh(token)
        return TokenRecord.model_validate(token), plain

    async def list(self, account_id: int) -> list[TokenRecord]:
        return [TokenRecord.model_validate(token) for token in await self.tokens.list(account_id)]

    async def get(self, account_id: int, token_id: int) -> TokenRecord:
        return TokenRecord.model_validate(await self._token(account_id, token_id))

    async def revoke(self, account_id: int, token_id: int) -> None:
        (await self._token(account_id, token_id)).revoked_at = datetime.now(timezone.utc)

    async def _token(self, account_id: int, token_id: int) -> ApiToken:
        token = await self.tokens.get(account_id, token_id)
        if token is None:
            raise NotFound(f"token {token_id} not found")
        return token
