"""/api/accounts (platform admins) and /api/tokens (manageSettings)."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Response

from pulse.api.deps import Manager, PlatformAdmin, Session
from pulse.api.schemas import AccountBody, TokenBody
from pulse.domain.errors import NotFound, ValidationFailed
from pulse.models import ApiToken, User
from pulse.repositories.accounts import TokenRepository
from pulse.repositories.reference import ReferenceRepository
from pulse.services.auth import create_account_with_admin, issue_token

router = APIRouter(prefix="/api", tags=["accounts"])


def token_view(token: ApiToken) -> dict:
    return {
        "id": token.id,
        "name": token.name,
        "permissions": token.permissions,
        "userId": token.user_id,
        "prefix": token.token_prefix,
        "createdAt": token.created_at.isoformat() if token.created_at else None,
        "lastUsedAt": token.last_used_at.isoformat() if token.last_used_at else None,
    }


@router.post("/accounts", status_code=201)
async def create_account(body: AccountBody, principal: PlatformAdmin, session: Session) -> dict:
    account_id, _, admin_token = await create_account_with_admin(session, body.name)
    return {"id": account_id, "name": body.name, "adminToken": admin_token}


@router.post("/tokens", status_code=201)
async def create_token(body: TokenBody, principal: Manager, session: Session) -> dict:
    user_id = body.user_id if body.user_id is not None else principal.user_id
    if user_id is not None and await ReferenceRepository(session, User).get(principal.account_id, user_id) is None:
        raise ValidationFailed("unknown user", details=[{"field": "userId", "message": f"no user {user_id} in this account"}])
    token, plain = await issue_token(
        session,
        account_id=principal.account_id,
        user_id=user_id,
        name=body.name,
        permissions=[p.value for p in body.permissions],
    )
    await session.refresh(token)
    return {**token_view(token), "token": plain}


@router.get("/tokens")
async def list_tokens(principal: Manager, session: Session) -> dict:
    tokens = await TokenRepository(session).list(principal.account_id)
    return {"data": [token_view(t) for t in tokens],
            "pagination": {"page": 1, "pageSize": len(tokens), "total": len(tokens), "totalPages": 1 if tokens else 0}}


@router.get("/tokens/{token_id}")
async def get_token(token_id: int, principal: Manager, session: Session) -> dict:
    token = await TokenRepository(session).get(principal.account_id, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    return token_view(token)


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: int, principal: Manager, session: Session) -> Response:
    token = await TokenRepository(session).get(principal.account_id, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    token.revoked_at = datetime.now(timezone.utc)
    return Response(status_code=204)
