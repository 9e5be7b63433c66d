"""Request dependencies: the database session (the request owns its transaction), the Temporal
client, and the authenticated principal with a permission check."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, AsyncIterator, Callable

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from pulse import logs
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.domain.errors import Forbidden, ValidationFailed
from pulse.domain.tickets import Permission
from pulse.services.auth import Principal, TokenCache, authenticate, cached_principal


# Dependencies are ``async def`` even when they await nothing: FastAPI runs a plain ``def`` one in
# a worker thread, a thread hop per dependency per request (five of them on a ticket list cost
# ~20 % of the request's CPU, bench/README.md "through HTTP").
async def get_sessions(request: Request) -> SessionFactory:
    return request.app.state.sessions


async def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def db_session(sessions: Annotated[SessionFactory, Depends(get_sessions)]) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed when the handler returns without error."""
    async with sessions() as session, session.begin():
        yield session


async def current_principal(
    request: Request,
    sessions: Annotated[SessionFactory, Depends(get_sessions)],
    authorization: Annotated[str | None, Header()] = None,
    x_account_id: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller, from the process's recently verified tokens (no database round trip) or else
    from the database (see ``pulse.services.auth.TokenCache``)."""
    cache: TokenCache = request.app.state.token_cache
    principal = cached_principal(cache, authorization, x_account_id)
    if principal is None:
        async with sessions() as session, session.begin():  # commits the token's lastUsedAt, when due
            principal = await authenticate(session, authorization, x_account_id, cache)
    logs.bind(account_id=principal.account_id)  # every later log line of the request names it
    return principal


def requires(permission: Permission) -> Callable[..., Principal]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        principal.require(permission)
        return principal

    return check


# scope="function": the transaction commits before the answer is sent. FastAPI's default for a
# dependency with yield ("request") ends it after the response: a client could read before the
# write was committed (a config PUT, then "sync now" → 409 not enabled), and a failing commit would
# follow a 2xx already sent.
Session = Annotated[AsyncSession, Depends(db_session, scope="function")]
Sessions = Annotated[SessionFactory, Depends(get_sessions)]
Temporal = Annotated[Client, Depends(get_temporal)]
Reader = Annotated[Principal, Depends(requires(Permission.READ_SUPPORT))]
Writer = Annotated[Principal, Depends(requires(Permission.WRITE_SUPPORT))]
Manager = Annotated[Principal, Depends(requires(Permission.MANAGE_SETTINGS))]
Authenticated = Annotated[Principal, Depends(current_principal)]
# ``Idempotency-Key`` on creating POSTs (stored in a 200-character column).
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]
# ``If-Match``: the version the change was made against (``3``, ``"3"`` and ``W/"3"`` alike), or ``*``.
IfMatchHeader = Annotated[str | None, Header(alias="If-Match", pattern=r'^(\*|(W/)?"?[0-9]{1,10}"?)$',
                                             description="the version the change was made against, or *")]


def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def platform_admin(principal: Authenticated) -> Principal:
    """Checked as a dependency, so a caller who may not act learns nothing about the body."""
    if not principal.is_platform_admin:
        raise Forbidden("only a platform admin can do this", code="missing_permission")
    return principal


PlatformAdmin = Annotated[Principal, Depends(platform_admin)]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def reject_unknown_write_params(request: Request) -> None:
    """Unknown query parameters on a write are a 422, as unknown body fields are: a typo such as
    ``?notfiy=true`` must not pass silently. Reads keep their own checks (ticket lists 422 too)."""
    if request.method not in WRITE_METHODS or not request.query_params:
        return
    known = _declared_query_params(getattr(request.scope.get("route"), "dependant", None))
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise ValidationFailed(
            "unknown query parameter: " + ", ".join(unknown),
            details=[{"field": name, "message": "unknown query parameter"} for name in unknown],
        )


def _declared_query_params(dependant: Any) -> set[str]:
    """The query parameter names a route (and its dependencies) declares."""
    names: set[str] = set()
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return names
