"""Bearer tokens: generated once, stored as SHA-256, resolved to a principal per request."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from pulse.domain.ids import is_storable_id
from pulse.domain.settings_records import AuditRecord, TokenRecord
from pulse.domain.tickets import Permission
from pulse.models import ApiToken, User
from pulse.repositories.accounts import AccountRepository, TokenRepository
from pulse.repositories.audit import AuditRepository
from pulse.repositories.reference import ReferenceRepository

ALL_PERMISSIONS = [p.value for p in Permission]
ACCOUNT_ADMIN_ROLE = "admin"
# ``lastUsedAt`` is written at most this often per token (one conditional UPDATE, not one per request).
LAST_USED_EVERY_SECONDS = 60
# A token verified less than this long ago is taken from the API process's memory (TokenCache).
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_SIZE = 10_000


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
    # The account's admin user (role "admin" in the account acted in), or a platform admin.
    is_account_admin: bool = False

    def has(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.has(permission):
            raise Forbidden(f"this token lacks the {permission.value} permission", code="missing_permission")


@dataclass(frozen=True)
class VerifiedToken:
    """What authenticating a token found: the token's own account and rights (no account header)."""

    token_id: int
    user_id: int | None
    account_id: int
    permissions: frozenset[str]
    is_platform_admin: bool
    is_account_admin: bool
    expires_at: datetime | None

    def principal(self) -> Principal:
        return Principal(self.token_id, self.user_id, self.account_id, self.permissions, self.is_platform_admin,
                         self.is_account_admin)


class TokenCache:
    """Tokens verified in the last ``seconds`` (by hash), so that most requests authenticate without
    a database round trip (one session and query: ~2 ms of the API's CPU per request). Expiry is
    still checked on every request; a token revoked through this process is forgotten at once
    (``forget``); revoked any other way (another API process, SQL) it keeps working here for at most
    ``seconds``. A request naming another account (``X-Account-Id``) checks the membership in the
    database as before. At most ``size`` tokens, the least recently verified dropped first."""

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS, size: int = TOKEN_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._verified: OrderedDict[str, tuple[float, VerifiedToken]] = OrderedDict()

    def get(self, token_hash: str) -> VerifiedToken | None:
        entry = self._verified.get(token_hash)
        if entry is None:
            return None
        if time.monotonic() - entry[0] >= self.seconds:
            del self._verified[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, verified: VerifiedToken) -> None:
        if self.seconds <= 0:
            return
        self._verified.pop(token_hash, None)
        self._verified[token_hash] = (time.monotonic(), verified)
        while len(self._verified) > self.size:
            self._verified.popitem(last=False)

    def forget(self, token_id: int) -> None:
        for token_hash in [h for h, (_, verified) in self._verified.items() if verified.token_id == token_id]:
            del self._verified[token_hash]


def _token_hash(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    return hash_token(authorization[7:].strip())


def cached_principal(cache: TokenCache, authorization: str | None, account_header: str | None) -> Principal | None:
    """The principal of a token ``cache`` verified recently, acting in its own account; None when
    the database must be asked (not cached, an account header, an expired token: ``authenticate``
    says why)."""
    if account_header or not authorization or not authorization.lower().startswith("bearer "):
        return None
    verified = cache.get(hash_token(authorization[7:].strip()))
    if verified is None or (verified.expires_at is not None and verified.expires_at <= datetime.now(timezone.utc)):
        return None
    return verified.principal()


async def authenticate(session: AsyncSession, authorization: str | None, account_header: str | None,
                       cache: TokenCache | None = None) -> Principal:
    """The principal of a bearer token (1 query; + 1 UPDATE of lastUsedAt at most once a minute;
    + membership checks for an ``account_header`` naming another account). ``cache`` remembers a
    valid token (``TokenCache``)."""
    token_hash = _token_hash(authorization)
    tokens = TokenRepository(session)
    found = await tokens.by_hash(token_hash)
    now = datetime.now(timezone.utc)
    if found is None:
        raise Unauthorized("the token is invalid, revoked or expired")
    token, role, user_account_id = found
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthorized("the token is invalid, revoked or expired")
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USED_EVERY_SECONDS:
        await tokens.touch(token.id, every_seconds=LAST_USED_EVERY_SECONDS)
    if cache is not None:
        cache.put(token_hash, VerifiedToken(
            token_id=token.id, user_id=token.user_id, account_id=token.account_id,
            permissions=frozenset(token.permissions), is_platform_admin=token.is_platform_admin,
            is_account_admin=token.is_platform_admin or (role == ACCOUNT_ADMIN_ROLE
                                                         and user_account_id == token.account_id),
            expires_at=token.expires_at))
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
        is_account_admin=token.is_platform_admin or (role == ACCOUNT_ADMIN_ROLE and user_account_id == account_id),
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
    admin = User(account_id=account.id, name=f"{name[:194]} admin", role="admin")  # a user's name: 200 at most
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
    """The API tokens of one account (``/api/tokens``): listed without their secret. Least
    privilege: a token mints only tokens with a subset of its own permissions, for its own user
    unless it is the account admin's; revoking another user's token takes the account admin.
    Every change is on the audit log, in the change's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tokens = TokenRepository(session)
        self.audit = AuditRepository(session)

    async def create(self, principal: Principal, *, user_id: int | None, name: str,
                     permissions: list[str]) -> tuple[TokenRecord, str]:
        """A new token of a user of the account; the plain value is returned once."""
        beyond = [permission for permission in permissions if permission not in principal.permissions]
        if beyond:
            raise Forbidden(f"a token cannot grant what it does not hold: {', '.join(beyond)}",
                            code="permission_escalation")
        if user_id != principal.user_id and not principal.is_account_admin:
            raise Forbidden("only the account admin mints tokens for another user", code="not_account_admin")
        account_id = principal.account_id
        if user_id is not None and await ReferenceRepository(self.session, User).get(account_id, user_id) is None:
            raise ValidationFailed("unknown user",
                                   details=[{"field": "userId", "message": f"no user {user_id} in this account"}])
        token, plain = await issue_token(self.session, account_id=account_id, user_id=user_id, name=name,
                                         permissions=permissions)
        await self.session.refresh(token)
        await self._audit(principal, "token.created", token,
                          {"name": name, "permissions": token.permissions, "userId": user_id})
        return TokenRecord.model_validate(token), plain

    async def list(self, account_id: int) -> list[TokenRecord]:
        return [TokenRecord.model_validate(token) for token in await self.tokens.list(account_id)]

    async def get(self, account_id: int, token_id: int) -> TokenRecord:
        return TokenRecord.model_validate(await self._token(account_id, token_id))

    async def revoke(self, principal: Principal, token_id: int) -> None:
        token = await self._token(principal.account_id, token_id)
        if token.user_id != principal.user_id and not principal.is_account_admin:
            raise Forbidden("only the account admin revokes another user's token", code="not_account_admin")
        token.revoked_at = datetime.now(timezone.utc)
        await self._audit(principal, "token.revoked", token, {"name": token.name, "userId": token.user_id})

    async def _audit(self, principal: Principal, action: str, token: ApiToken, details: dict[str, object]) -> None:
        await self.audit.add(account_id=principal.account_id, actor_user_id=principal.user_id,
                             actor_token_id=principal.token_id, action=action, target_type="token",
                             target_id=token.id, details=details)

    async def _token(self, account_id: int, token_id: int) -> ApiToken:
        token = await self.tokens.get(account_id, token_id)
        if token is None:
            raise NotFound(f"token {token_id} not found")
        return token


class AuditLogService:
    def __init__(self, session: AsyncSession) -> None:
        self.audit = AuditRepository(session)

    async def page(self, account_id: int, *, page: int, page_size: int) -> tuple[list[AuditRecord], int]:
        rows, total = await self.audit.page(account_id, page=page, page_size=page_size)
        return [AuditRecord.model_validate(row) for row in rows], total
