"""``/api/rotations``: ordered agents with weights (weighted round-robin), for auto-assignment and
escalation. Reads need readSupport; writes need manageSettings. ``version`` + ``If-Match`` on
PATCH. ``GET /api/rotations/{id}/next`` previews the next pick without advancing the rotation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field, ValidationError, field_validator

from pulse.api.deps import IdempotencyKeyHeader, IfMatchHeader, Manager, Reader, Session, request_hash
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import MAX_TEAM_MEMBERS, Body, Id, not_null
from pulse.domain.errors import ValidationFailed
from pulse.domain.rotation import MAX_WEIGHT, MIN_WEIGHT
from pulse.services.rotations import RotationService

router = APIRouter(prefix="/api/rotations", tags=["rotations"])


class RotationMemberBody(Body):
    user_id: Id
    weight: int = Field(default=1, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    paused: bool = False


# What the schema says of a member (the list is checked member by member, for exact error paths).
_MEMBERS = {"items": {key: value for key, value in RotationMemberBody.model_json_schema(by_alias=True).items()
                      if key != "title"}}


class RotationBody(Body):
    name: str = Field(min_length=1, max_length=200)
    # Checked one by one (``members_values``), so a bad member is named ``members[2].userId``.
    members: list[Any] = Field(default=[], max_length=MAX_TEAM_MEMBERS, json_schema_extra=_MEMBERS)


class RotationPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    members: list[Any] | None = Field(default=None, max_length=MAX_TEAM_MEMBERS, json_schema_extra=_MEMBERS)
    version: int | None = None

    _not_null = field_validator("name", "members")(not_null)


def _member_field(index: int, location: tuple[Any, ...]) -> str:
    return f"members[{index}]" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)


def members_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with its ``members`` (when sent) validated: ``[{user_id, weight, paused}]``."""
    if values.get("members") is None:
        return values
    members, details = [], []
    for index, raw in enumerate(values["members"]):
        try:
            members.append(RotationMemberBody.model_validate(raw).model_dump())
        except ValidationError as error:
            for problem in error.errors():
                message = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
                details.append({"field": _member_field(index, tuple(problem["loc"])), "message": message})
    if details:
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        raise ValidationFailed(f"invalid request: {summary}", details=details)
    return {**values, "members": members}


@router.get("", name="list rotations")
async def list_rotations(principal: Reader, session: Session, page: Annotated[Page, Depends(page_params)]) -> dict:
    rows, total = await RotationService(session).list(principal.account_id, page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


@router.get("/{rotation_id}", name="get rotation")
async def get_rotation(rotation_id: int, principal: Reader, session: Session) -> dict:
    return (await RotationService(session).get(principal.account_id, rotation_id)).to_api()


@router.get("/{rotation_id}/next", name="preview the next pick of a rotation")
async def preview_next_member(rotation_id: int, principal: Reader, session: Session) -> dict:
    """Who the next pick would return (``{"userId": null}`` when every member is paused or there
    are none). Nothing advances: only auto-assignment and escalation pick."""
    return {"userId": await RotationService(session).next_user_id(principal.account_id, rotation_id)}


@router.post("", status_code=201, name="create rotation")
async def create_rotation(body: RotationBody, principal: Manager, session: Session, response: Response,
                          idempotency_key: IdempotencyKeyHeader = None) -> dict:
    values = members_values(body.changes())
    row, created = await RotationService(session).create(principal.account_id, values, idempotency_key=idempotency_key,
                                                         request_hash=request_hash(values))
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return row.to_api()


@router.patch("/{rotation_id}", name="update rotation")
async def update_rotation(rotation_id: int, body: RotationPatch, principal: Manager, session: Session,
                          if_match: IfMatchHeader = None) -> dict:
    values = members_values(body.changes())
    version = expected_version(if_match, values.pop("version", None))
    return (await RotationService(session).update(principal.account_id, rotation_id, values, version)).to_api()


@router.delete("/{rotation_id}", status_code=204, name="delete rotation")
async def delete_rotation(rotation_id: int, principal: Manager, session: Session) -> Response:
    await RotationService(session).delete(principal.account_id, rotation_id)
    return Response(status_code=204)
