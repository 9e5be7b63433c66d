"""Reference data that tickets point at: users, teams, ticket types, ticket categories.
Reads need readSupport; writes need manageSettings. ``version`` + ``If-Match`` on PATCH."""


from datetime import datetime, timezone
from typing import Annotated, Any, Awaitable, Callable

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.api.deps import IdempotencyKeyHeader, Manager, Reader, Session, request_hash
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import NamedBody, NamedPatch, TeamBody, TeamPatch, UserBody, UserPatch
from pulse.domain.errors import NotFound, ValidationFailed, VersionConflict
from pulse.domain.records import Record
from pulse.models import Team, TicketCategory, TicketType, User
from pulse.repositories.idempotency import IdempotencyRepository
from pulse.repositories.reference import ReferenceRepository, TeamMemberRepository

router = APIRouter(prefix="/api", tags=["reference data"])


class UserView(Record):
    id: int
    name: str
    email: str | None
    phone: str | None
    role: str
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class TeamView(Record):
    id: int
    name: str
    description: str | None
    manager_user_id: int | None
    member_ids: list[int] = []
    slack_webhook_url: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class NamedView(Record):
    id: int
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


async def _check_users(session: AsyncSession, account_id: int, field: str, user_ids: list[int]) -> None:
    users = ReferenceRepository(session, User)
    missing = [uid for uid in user_ids if await users.get(account_id, uid) is None]
    if missing:
        raise ValidationFailed("unknown users", details=[{"field": field, "message": f"no user with id {uid} in this account"} for uid in missing])


def _apply_patch(row: Any, changes: dict[str, Any], version: int | None) -> bool:
    """Set the changed columns; whether anything changed."""
    if version is not None and version != row.version:
        raise VersionConflict(f"version is {row.version}, not {version}; reload and retry",
                              details=[{"field": "version", "message": f"current version is {row.version}"}])
    changed = False
    for field, value in changes.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed


def _crud(
    path: str,
    model: type[Any],
    view: type[Record],
    create_body: type[BaseModel],
    patch_body: type[BaseModel],
    *,
    label: str,
    before_write: Callable[[AsyncSession, int, dict[str, Any]], Awaitable[None]] | None = None,
    render: Callable[[AsyncSession, list[Any]], Awaitable[list[dict[str, Any]]]] | None = None,
    after_write: Callable[[AsyncSession, Any, dict[str, Any]], Awaitable[bool]] | None = None,
) -> None:
    async def rendered(session: AsyncSession, rows: list[Any]) -> list[dict[str, Any]]:
        if render is not None:
            return await render(session, rows)
        return [view.model_validate(row).to_api() for row in rows]

    async def load(session: AsyncSession, account_id: int, row_id: int) -> Any:
        row = await ReferenceRepository(session, model).get(account_id, row_id)
        if row is None:
            raise NotFound(f"{label} {row_id} not found")
        return row

    @router.get(f"/{path}", name=f"list {label}s")
    async def list_rows(principal: Reader, session: Session, page: Annotated[Page, Depends(page_params)]) -> dict:
        rows, total = await ReferenceRepository(session, model).list(principal.account_id, page=page.page, page_size=page.page_size)
        return paginated(await rendered(session, list(rows)), page, total)

    @router.get(f"/{path}/{{row_id}}", name=f"get {label}")
    async def get_row(row_id: int, principal: Reader, session: Session) -> dict:
        return (await rendered(session, [await load(session, principal.account_id, row_id)]))[0]

    @router.post(f"/{path}", status_code=201, name=f"create {label}")
    async def create_row(body: create_body, principal: Manager, session: Session,  # type: ignore[valid-type]
                         response: Response, idempotency_key: IdempotencyKeyHeader = None) -> dict:
        values = body.changes()  # type: ignore[attr-defined]
        keys, scope = IdempotencyRepository(session), f"{path}.create"
        if idempotency_key:
            earlier = await keys.claim(principal.account_id, scope, idempotency_key, request_hash(values))
            if earlier is not None:
                response.headers["Idempotent-Replayed"] = "true"
                return (await rendered(session, [await load(session, principal.account_id, earlier)]))[0]
        if before_write:
            await before_write(session, principal.account_id, values)
        extra = {k: values.pop(k) for k in list(values) if not hasattr(model, k)}
        row = await ReferenceRepository(session, model).add(model(account_id=principal.account_id, **values))
        if after_write:
            await after_write(session, row, extra)
        if idempotency_key:
            await keys.remember(principal.account_id, scope, idempotency_key, row.id)
        await session.refresh(row)
        return (await rendered(session, [row]))[0]

    @router.patch(f"/{path}/{{row_id}}", name=f"update {label}")
    async def update_row(row_id: int, body: patch_body, principal: Manager, session: Session,  # type: ignore[valid-type]
                         if_match: Annotated[str | None, Header()] = None) -> dict:
        values = body.changes()  # type: ignore[attr-defined]
        version = expected_version(if_match, values.pop("version", None))
        row = await load(session, principal.account_id, row_id)
        if before_write:
            await before_write(session, principal.account_id, values)
        extra = {k: values.pop(k) for k in list(values) if not hasattr(model, k)}
        changed = _apply_patch(row, values, version)
        if after_write and extra:
            changed = await after_write(session, row, extra) or changed
        if changed:  # a PATCH that changes nothing keeps the version
            row.version += 1
            row.updated_at = datetime.now(timezone.utc)
        await ReferenceRepository(session, model).save(row)
        return (await rendered(session, [row]))[0]

    @router.delete(f"/{path}/{{row_id}}", status_code=204, name=f"delete {label}")
    async def delete_row(row_id: int, principal: Manager, session: Session) -> Response:
        row = await load(session, principal.account_id, row_id)
        await ReferenceRepository(session, model).delete(row)
        return Response(status_code=204)


async def _check_team(session: AsyncSession, account_id: int, values: dict[str, Any]) -> None:
    if values.get("manager_user_id") is not None:
        await _check_users(session, account_id, "managerUserId", [values["manager_user_id"]])
    if values.get("member_ids"):
        await _check_users(session, account_id, "memberIds", values["member_ids"])


async def _render_teams(session: AsyncSession, teams: list[Team]) -> list[dict[str, Any]]:
    members = await TeamMemberRepository(session).members([team.id for team in teams])
    return [TeamView.model_validate(team).model_copy(update={"member_ids": members[team.id]}).to_api() for team in teams]


async def _store_members(session: AsyncSession, team: Team, extra: dict[str, Any]) -> bool:
    """Replace the team's members; whether they changed."""
    if extra.get("member_ids") is None:
        return False
    members = TeamMemberRepository(session)
    wanted = sorted(set(extra["member_ids"]))
    if (await members.members([team.id]))[team.id] == wanted:
        return False
    await members.replace(team.id, wanted)
    return True


_crud("users", User, UserView, UserBody, UserPatch, label="user")
_crud("teams", Team, TeamView, TeamBody, TeamPatch, label="team", before_write=_check_team,
      render=_render_teams, after_write=_store_members)
_crud("ticket-types", TicketType, NamedView, NamedBody, NamedPatch, label="ticket type")
_crud("ticket-categories", TicketCategory, NamedView, NamedBody, NamedPatch, label="ticket category")
