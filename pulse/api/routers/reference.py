"""Reference data that tickets point at: users, teams, ticket types, ticket categories.
Reads need readSupport; writes need manageSettings. ``version`` + ``If-Match`` on PATCH."""


from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from pulse.api.deps import IdempotencyKeyHeader, IfMatchHeader, Manager, Reader, Session, request_hash
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import (
    NamedBody,
    NamedPatch,
    TeamBody,
    TeamPatch,
    TicketTypeBody,
    TicketTypePatch,
    UserBody,
    UserPatch,
)
from pulse.services.reference import (
    ReferenceService,
    TeamService,
    TicketCategoryService,
    TicketTypeService,
    UserService,
)

router = APIRouter(prefix="/api", tags=["reference data"])


def _crud(path: str, service: type[ReferenceService], create_body: type[BaseModel], patch_body: type[BaseModel]) -> None:
    label = service.label

    @router.get(f"/{path}", name=f"list {label}s")
    async def list_rows(principal: Reader, session: Session, page: Annotated[Page, Depends(page_params)]) -> dict:
        rows, total = await service(session).list(principal.account_id, page=page.page, page_size=page.page_size)
        return paginated([row.to_api() for row in rows], page, total)

    @router.get(f"/{path}/{{row_id}}", name=f"get {label}")
    async def get_row(row_id: int, principal: Reader, session: Session) -> dict:
        return (await service(session).get(principal.account_id, row_id)).to_api()

    @router.post(f"/{path}", status_code=201, name=f"create {label}")
    async def create_row(body: create_body, principal: Manager, session: Session,  # type: ignore[valid-type]
                         response: Response, idempotency_key: IdempotencyKeyHeader = None) -> dict:
        values = body.changes()  # type: ignore[attr-defined]
        row, created = await service(session).create(principal.account_id, values, idempotency_key=idempotency_key,
                                                     request_hash=request_hash(values))
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return row.to_api()

    @router.patch(f"/{path}/{{row_id}}", name=f"update {label}")
    async def update_row(row_id: int, body: patch_body, principal: Manager, session: Session,  # type: ignore[valid-type]
                         if_match: IfMatchHeader = None) -> dict:
        values = body.changes()  # type: ignore[attr-defined]
        version = expected_version(if_match, values.pop("version", None))
        return (await service(session).update(principal.account_id, row_id, values, version)).to_api()

    @router.delete(f"/{path}/{{row_id}}", status_code=204, name=f"delete {label}")
    async def delete_row(row_id: int, principal: Manager, session: Session) -> Response:
        await service(session).delete(principal.account_id, row_id)
        return Response(status_code=204)


_crud("users", UserService, UserBody, UserPatch)
_crud("teams", TeamService, TeamBody, TeamPatch)
_crud("ticket-types", TicketTypeService, TicketTypeBody, TicketTypePatch)
_crud("ticket-categories", TicketCategoryService, NamedBody, NamedPatch)
