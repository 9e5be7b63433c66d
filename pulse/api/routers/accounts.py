"""/api/accounts (platform admins), /api/tokens and /api/audit-log (manageSettings). Responses
that carry or describe credentials are ``Cache-Control: no-store``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from pulse.api.deps import Manager, PlatformAdmin, Session
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.schemas import AccountBody, TokenBody
from pulse.domain.settings_records import AuditRecord, TokenRecord
from pulse.services.auth import AuditLogService, TokenService, create_account_with_admin

router = APIRouter(prefix="/api", tags=["accounts"])
NO_STORE = {"Cache-Control": "no-store"}


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


def audit_view(entry: AuditRecord) -> dict:
    return {
        "id": entry.id,
        "action": entry.action,
        "actorUserId": entry.actor_user_id,
        "actorTokenId": entry.actor_token_id,
        "targetType": entry.target_type,
        "targetId": entry.target_id,
        "details": entry.details,
        "createdAt": entry.created_at.isoformat(),
    }


@router.post("/accounts", status_code=201)
async def create_account(body: AccountBody, principal: PlatformAdmin, session: Session, response: Response) -> dict:
    account_id, _, admin_token = await create_account_with_admin(session, body.name)
    response.headers.update(NO_STORE)
    return {"id": account_id, "name": body.name, "adminToken": admin_token}


@router.post("/tokens", status_code=201)
async def create_token(body: TokenBody, principal: Manager, session: Session, response: Response) -> dict:
    user_id = body.user_id if body.user_id is not None else principal.user_id
    token, plain = await TokenService(session).create(
        principal,
        user_id=user_id,
        name=body.name,
        permissions=[p.value for p in body.permissions],
    )
    response.headers.update(NO_STORE)
    return {**token_view(token), "token": plain}


@router.get("/tokens")
async def list_tokens(principal: Manager, session: Session, response: Response) -> dict:
    tokens = await TokenService(session).list(principal.account_id)
    response.headers.update(NO_STORE)
    return {"data": [token_view(t) for t in tokens],
            "pagination": {"page": 1, "pageSize": len(tokens), "total": len(tokens), "totalPages": 1 if tokens else 0}}


@router.get("/tokens/{token_id}")
async def get_token(token_id: int, principal: Manager, session: Session, response: Response) -> dict:
    response.headers.update(NO_STORE)
    return token_view(await TokenService(session).get(principal.account_id, token_id))


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: int, principal: Manager, session: Session, request: Request) -> Response:
    await TokenService(session).revoke(principal, token_id)
    request.app.state.token_cache.forget(token_id)  # this process stops taking it at once
    return Response(status_code=204, headers=NO_STORE)


@router.get("/audit-log")
async def audit_log(principal: Manager, session: Session, page: Annotated[Page, Depends(page_params)]) -> dict:
    entries, total = await AuditLogService(session).page(principal.account_id, page=page.page,
                                                         page_size=page.page_size)
    return paginated([audit_view(entry) for entry in entries], page, total)
