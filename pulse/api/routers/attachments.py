"""Ticket attachments (spec §2.3): ``POST /api/tickets/{id}/attachments`` (multipart ``file``,
writeSupport), ``GET …/attachments`` and ``GET …/attachments/{attachmentId}/content`` (readSupport),
``DELETE …/attachments/{attachmentId}`` (writeSupport; not in the spec's table, see docs/decisions.md)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Response, UploadFile

from pulse.api.deps import IdempotencyKeyHeader, Reader, Sessions, Temporal, Writer, get_settings
from pulse.api.pagination import Page, page_params, paginated
from pulse.config import Settings
from pulse.services.attachments import AttachmentService

router = APIRouter(prefix="/api/tickets", tags=["attachments"])

READ_CHUNK = 1024 * 1024


def attachment_service(sessions: Sessions, temporal: Temporal,
                       settings: Annotated[Settings, Depends(get_settings)]) -> AttachmentService:
    return AttachmentService(sessions, temporal, settings.task_queue, settings.attachment_max_bytes)


Attachments = Annotated[AttachmentService, Depends(attachment_service)]


@router.post("/{ticket_ref}/attachments", status_code=201)
async def upload_attachment(ticket_ref: str, principal: Writer, attachments: Attachments,
                            file: Annotated[UploadFile, File()], idempotency_key: IdempotencyKeyHeader = None) -> dict:
    content = bytearray()
    while chunk := await file.read(READ_CHUNK):
        content += chunk
        attachments.check_size(len(content))
    attachment = await attachments.upload(principal, ticket_ref, file.filename, file.content_type, bytes(content),
                                          idempotency_key)
    return attachment.to_api()


@router.get("/{ticket_ref}/attachments")
async def list_attachments(ticket_ref: str, principal: Reader, attachments: Attachments,
                           page: Annotated[Page, Depends(page_params)]) -> dict:
    rows, total = await attachments.list(principal, ticket_ref, page=page.page, page_size=page.page_size)
    return paginated([row.to_api() for row in rows], page, total)


@router.get("/{ticket_ref}/attachments/{attachment_id}/content")
async def download_attachment(ticket_ref: str, attachment_id: int, principal: Reader,
                              attachments: Attachments) -> Response:
    download = await attachments.download(principal, ticket_ref, attachment_id)
    attachment = download.attachment
    return Response(download.content, media_type=attachment.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.file_name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{attachment.sha256}"',
    })


@router.delete("/{ticket_ref}/attachments/{attachment_id}")
async def delete_attachment(ticket_ref: str, attachment_id: int, principal: Writer, attachments: Attachments) -> dict:
    """Delete one attachment: it is no longer listed or served, the ticket's ``attachmentCount``
    goes down and its timeline shows ``attachment_deleted``; answers the deleted attachment."""
    return (await attachments.delete(principal, ticket_ref, attachment_id)).to_api()
