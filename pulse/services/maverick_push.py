"""Outbound: the ``maverick_push`` outbox consumer. A Maverick ticket's status change, comment or
attachment made in Pulse (never one that came from Maverick) is sent to Maverick once:

- status: ``PATCH`` with ``expectedVersion`` = the remote version the link knows. The answer is the
  push's own echo: when it is exactly the next version, the link takes it (a pull or webhook
  reporting it back changes nothing). A version mismatch means Maverick changed meanwhile: it is
  read again, and if its status changed too the later change wins (Maverick's newer status stays
  and will be pulled; else Pulse's is sent against the new version).
- comments (public; internal notes only with ``syncInternalNotes``) and attachments (by Pulse):
  created with ``externalId`` ``pulse-comment-<id>`` / ``pulse-attachment-<id>`` (a retry creates
  nothing new); the created ids are remembered so a pull does not bring them back. An attachment
  whose bytes Maverick already holds (same sha256), or that was deleted in Pulse before the push
  ran, is not sent. Deleting an attachment is not pushed (Maverick's contract has no document delete).

The delivery is recorded after the push succeeded; a retry before that is safe (see above).
"""

from __future__ import annotations

import logging
from typing import Any

from pulse.db import SessionFactory
from pulse.domain.maverick import MaverickSettings, maverick_status
from pulse.domain.outbox import MAVERICK_PUSH
from pulse.domain.tickets import TicketStatus
from pulse.integrations.maverick import MaverickClient, MaverickError, VersionMismatch
from pulse.repositories.attachments import AttachmentRepository
from pulse.repositories.maverick import MaverickConfigRepository
from pulse.repositories.maverick_sync import MaverickLinkRepository, MaverickPushRepository
from pulse.repositories.ticket_store import TicketStore
from pulse.secretbox import SecretBox
from pulse.services.maverick import stored_settings
from pulse.services.maverick_sync import client_for

log = logging.getLogger("pulse.maverick")


class MaverickPush:
    def __init__(self, sessions: SessionFactory, box: SecretBox) -> None:
        self.sessions = sessions
        self.box = box

    async def deliver(self, event_id: int) -> bool:
        """Push one event; False when it had been pushed already (or there was nothing to do)."""
        async with self.sessions() as session:
            push = MaverickPushRepository(session)
            if await push.delivered(event_id, MAVERICK_PUSH):
                return False
            event = await push.event(event_id)
            ticket = await TicketStore(session).read(event.account_id, event.ticket_id) if event else None
            row = await MaverickConfigRepository(session).get(event.account_id) if event else None
            link = (await MaverickLinkRepository(session).get(event.account_id, ticket.external_ticket_id)
                    if event and ticket and ticket.external_ticket_id else None)
        settings = stored_settings(row, self.box) if row is not None else None
        if event is None or ticket is None or link is None or settings is None or not settings.enabled \
                or not settings.sync_direction.pushes:
            await self._done(event_id)
            return False
        async with client_for(settings) as client:
            try:
                remembered = await self._push(client, settings, event, link)
            except MaverickError as error:  # refused for good (the ticket is gone, a status it rejects)
                log.warning("Maverick refused the push of event %s: %s", event_id, error)
                remembered = {}
        async with self.sessions() as session, session.begin():
            if remembered:
                version = remembered.pop("_version", None)
                await MaverickLinkRepository(session).remember(event.account_id, link.maverick_ticket_id, remembered,
                                                               version)
            await MaverickPushRepository(session).mark_delivered(event_id, MAVERICK_PUSH)
        return True

    async def _done(self, event_id: int) -> None:
        async with self.sessions() as session, session.begin():
            await MaverickPushRepository(session).mark_delivered(event_id, MAVERICK_PUSH)

    async def _push(self, client: MaverickClient, settings: MaverickSettings, event: Any, link: Any) -> dict[str, Any]:
        """The push of one event; what the link should remember of it."""
        remote_id = link.maverick_ticket_id
        if event.event_type == "status_changed":
            return await self._status(client, settings, event, link)
        if event.event_type == "comment_added":
            if event.data.get("isInternal") and not settings.sync_internal_notes:
                return {}
            async with self.sessions() as session:
                comment = await MaverickPushRepository(session).comment(event.ticket_id, int(event.data["commentId"]))
            if comment is None:
                return {}
            created = await client.add_comment(remote_id, comment.body, internal=comment.is_internal,
                                               external_id=f"pulse-comment-{comment.id}")
            return {"comments": [created.id]}
        if event.event_type == "attachment_added" and event.data.get("source") == "pulse":
            sha256, attachment_id = str(event.data["sha256"]), int(event.data["attachmentId"])
            if await self._attachment_deleted(event.ticket_id, attachment_id):
                return {}  # deleted in Pulse before it could be sent: not sent at all
            if any(document.sha256.lower() == sha256 for document in await client.documents(remote_id)):
                return {}  # Maverick holds these bytes already: documents move by content, once
            async with self.sessions() as session:
                attachments = AttachmentRepository(session)
                deleted = await attachments.is_deleted(event.ticket_id, attachment_id)
                content = None if deleted else await attachments.content(event.account_id, sha256)
            if content is None:
                return {}
            created = await client.add_document(remote_id, str(event.data["fileName"]), content,
                                                str(event.data.get("contentType") or "application/octet-stream"),
                                                external_id=f"pulse-attachment-{event.data['attachmentId']}")
            return {"documents": [created.id]}
        return {}

    async def _attachment_deleted(self, ticket_id: int, attachment_id: int) -> bool:
        async with self.sessions() as session:
            return await AttachmentRepository(session).is_deleted(ticket_id, attachment_id)

    async def _status(self, client: MaverickClient, settings: MaverickSettings, event: Any,
                      link: Any) -> dict[str, Any]:
        applied = link.remote_fields or {}
        target = maverick_status(TicketStatus(event.data["to"]), settings.status_mapping, applied.get("status"))
        if target is None or target == applied.get("status"):
            return {}
        try:
            changed = await client.change_status(link.maverick_ticket_id, target, expected_version=link.remote_version)
        except VersionMismatch:
            remote = await client.ticket(link.maverick_ticket_id)
            if remote.status != applied.get("status") and remote.updated_at > event.occurred_at:
                return {}  # Maverick's own later status change wins; the pull brings it
            if remote.status == target:
                return {"status": target}
            changed = await client.change_status(link.maverick_ticket_id, target, expected_version=remote.version)
            return {"status": changed.status}  # other remote changes in between are left for the pull
        # Exactly the next version: nothing but our change happened, so the echo needs no pull.
        ours = changed.version == link.remote_version + 1
        return {"status": changed.status, **({"_version": changed.version} if ours else {})}
