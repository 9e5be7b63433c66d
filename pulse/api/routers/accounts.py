"""/api/accounts (platform admins) and /api/tokens (manageSettings)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pulse.api.deps import Manager, PlatformAdmin, Session
from pulse.api.schemas import AccountBody, TokenBody
from pulse.domain.settings_records import TokenRecord
from pulse.services.auth import TokenService, create_account_with_admin

router = APIRouter(prefix="/api", tags=["accounts"])


def token_view(token: TokenRecord) -> dict:
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
    token, plain = await TokenService(session).create(
        principal.account_id,
        user_id=user_id,
        name=body.name,
        permissions=[p.value for p in body.permissions],
    )
    return {**token_view(token), "token": plain}


@router.get("/tokens")
async def list_tokens(principal: Manager, session: Session) -> dict:
    tokens = await TokenService(session).list(principal.account_id)
    return {"data": [token_view(t) for t in tokens],
            "pagination": {"page": 1, "pageSize": len(tokens), "total": len(tokens), "totalPages": 1 if tokens else 0}}


@router.get("/tokens/{token_id}")
async def get_token(token_id: int, principal: Manager, session: Session) -> dict:
    return token_view(await TokenService(session).get(principal.account_id, token_id))


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: int, principal: Manager, session: Session) -> Response:
    await TokenService(session).revoke(principal.account_id, token_id)
    return Response(status_code=204)
