"""The codec endpoint the Temporal UI and CLI read encrypted histories through (Temporal's remote
codec protocol: POST ``/codec/decode`` and ``/codec/encode`` with a ``Payloads`` message as
protobuf JSON). It needs a bearer token with readSupport (the CLI: ``temporal workflow show
--codec-endpoint http://…/codec --codec-auth "Bearer <token>"``), except from the configured
trusted origin (the dev server's UI, which cannot send one; ``pulse dev`` sets it).
Without a key ring there is nothing to decode: payloads are returned as they are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from cryptography.exceptions import InvalidTag
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from pulse.api.deps import get_sessions, get_settings
from pulse.codec import KeyRingError
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.domain.errors import ValidationFailed
from pulse.domain.tickets import Permission
from pulse.services.auth import authenticate

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


def _trusted(settings: Settings, origin: str | None) -> bool:
    allowed = {entry.strip() for entry in (settings.codec_trusted_origin or "").split(",") if entry.strip()}
    return origin is not None and origin in allowed


def _cors(settings: Settings, origin: str | None) -> dict[str, str]:
    if not _trusted(settings, origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Vary": "Origin"}


async def codec_caller(
    settings: Annotated[Settings, Depends(get_settings)],
    sessions: Annotated[SessionFactory, Depends(get_sessions)],
    authorization: Annotated[str | None, Header()] = None,
    origin: Annotated[str | None, Header()] = None,
) -> None:
    """A token that may read tickets, or the trusted UI origin without one."""
    if authorization is None and _trusted(settings, origin):
        return
    async with sessions() as session, session.begin():
        principal = await authenticate(session, authorization, None)
    principal.require(Permission.READ_SUPPORT)


async def _transcode(request: Request, decode: bool) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as error:
        raise ValidationFailed("the body must be a Payloads message as protobuf JSON",
                               details=[{"field": "payloads", "message": str(error)[:200]}]) from None
    codec = request.app.state.codec
    if codec is not None:
        try:
            done = await (codec.decode(payloads.payloads) if decode else codec.encode(payloads.payloads))
        except (KeyRingError, InvalidTag) as error:
            raise ValidationFailed("a payload could not be decrypted", details=[
                {"field": "payloads", "message": str(error) or "authentication tag mismatch"}]) from None
        payloads = Payloads(payloads=done)
    settings: Settings = request.app.state.settings
    return Response(json_format.MessageToJson(payloads), media_type="application/json",
                    headers=_cors(settings, request.headers.get("origin")))


@router.options("/{operation}")
async def preflight(operation: str, request: Request) -> Response:
    return Response(status_code=204, headers=_cors(request.app.state.settings, request.headers.get("origin")))


@router.post("/decode", dependencies=[Depends(codec_caller)])
async def decode(request: Request) -> Response:
    return await _transcode(request, decode=True)


@router.post("/encode", dependencies=[Depends(codec_caller)])
async def encode(request: Request) -> Response:
    return await _transcode(request, decode=False)
