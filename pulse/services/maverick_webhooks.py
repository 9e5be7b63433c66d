"""Maverick's webhooks as Pulse receives them: verified with the account's webhook secret, then
recorded once per event id. An event only says *what* changed; acting on it means reading the
current remote object (the sync's job), so a repeat or a late event does no harm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Unauthorized, ValidationFailed
from pulse.domain.ids import is_storable_id
from pulse.integrations.maverick import BadEvent, BadSignature, WebhookEvent, parse_event, verify
from pulse.repositories.maverick import MaverickConfigRepository, MaverickWebhookEventRepository
from pulse.secretbox import SecretBox
from pulse.services.maverick import stored_settings


class InvalidSignature(Unauthorized):
    code = "invalid_signature"


@dataclass(frozen=True)
class ReceivedEvent:
    event: WebhookEvent
    duplicate: bool
    fetch_ticket_id: str | None  # the Maverick ticket to read now (None: a repeat, or nothing to pull)


class MaverickWebhookService:
    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self.configs = MaverickConfigRepository(session)
        self.events = MaverickWebhookEventRepository(session)
        self.box = box

    async def receive(self, account_ref: str, body: bytes, signature: str | None, now: datetime) -> ReceivedEvent:
        """401 unless the body is signed with the account's webhook secret in the last 5 minutes
        (an unknown account, or one without a secret, cannot be verified: also 401, so the
        endpoint tells nobody which accounts exist); 422 for a signed body that is no event."""
        account_id = int(account_ref) if account_ref.isascii() and account_ref.isdigit() else 0
        row = await self.configs.get(account_id) if is_storable_id(account_id) else None
        secret = stored_settings(row, self.box).secret("webhook_secret") if row is not None else None
        if secret is None:
            raise InvalidSignature("this webhook URL has no Maverick webhook secret configured to verify with")
        try:
            verify(secret, signature, body, now)
        except BadSignature as problem:
            raise InvalidSignature(str(problem)) from None
        try:
            event = parse_event(body)
        except BadEvent as problem:
            raise ValidationFailed(f"{problem}; expected {{id, type, occurredAt, data}}",
                                   details=[{"field": "body", "message": "not a Maverick event"}]) from None
        new = await self.events.record(account_id, event.id, event.type, event.occurred_at, event.data)
        settings = stored_settings(row, self.box)
        pulls = settings.enabled and settings.sync_direction.pulls
        return ReceivedEvent(event=event, duplicate=not new,
                             fetch_ticket_id=event.ticket_id() if new and pulls else None)
