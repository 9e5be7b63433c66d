"""What an outbox event asks to be notified (``data["notify"]``), the message each channel sends,
and the read models the API renders. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pulse.domain.records import Record

SMS_MAX_CHARS = 1600
TITLE_MAX_CHARS = 500


class NotifyRequest(BaseModel):
    """``ticket_events.data["notify"]``, written by the engine in the event's transaction."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    kind: str = "automation"
    reason: str | None = None
    channels: list[str] = []
    user_ids: list[int] = []
    team_id: int | None = None
    emails: list[str] = []
    subject: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Where one message goes. ``target`` is what the delivery record shows (an address, a phone
    number, ``user:<id>``, ``team:<id>`` or ``account``); ``address`` is where it is sent — for
    Slack the webhook URL, which is a secret and so is never the recorded target."""

    target: str
    address: str

    def __repr__(self) -> str:  # the address may be a webhook URL: keep it out of logs
        return f"Recipient(target={self.target!r})"


@dataclass(frozen=True)
class Message:
    ticket_id: int
    ticket_number: str
    ticket_subject: str
    kind: str
    reason: str | None
    subject: str | None
    text: str | None

    @property
    def title(self) -> str:
        """A one-line headline that always names the ticket."""
        title = self.subject or f"{self.ticket_number}: {self.ticket_subject}"
        if self.ticket_number not in title:
            title = f"[{self.ticket_number}] {title}"
        return _one_line(title)[:TITLE_MAX_CHARS]

    @property
    def body(self) -> str:
        return self.text or self.ticket_subject

    def email_subject(self) -> str:
        return self.title

    def email_text(self) -> str:
        return f"{self.body}\n\n--\n{self.ticket_number}: {self.ticket_subject}\n"

    def sms_body(self) -> str:
        text = f"{self.ticket_number}: {_one_line(self.text or self.subject or self.ticket_subject)}"
        return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 1] + "…"

    def slack_payload(self) -> dict[str, Any]:
        """An incoming-webhook body: ``text`` (the fallback shown in notifications) holds the ticket
        number and subject; ``blocks`` lay it out. Slack's control characters are escaped."""
        headline = f"{self.ticket_number} {self.ticket_subject}"
        text = f"{headline}: {self.text}" if self.text else headline
        context = f"{self.kind}" + (f" · {self.reason}" if self.reason else "")
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": f"*{_slack(self.ticket_number)}* {_slack(self.ticket_subject)}"}},
        ]
        if self.text or self.subject:
            blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                       "text": _slack((self.text or self.subject or "")[:2900])}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack(context)}]})
        return {"text": _slack(text[:3000]), "blocks": blocks}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class InAppNotification(Record):
    """One in-app notification as the API and the stream render it."""

    id: int
    ticket_id: int | None = None
    kind: str
    title: str
    body: str | None = None
    read: bool = False
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> "InAppNotification":
        return cls(id=row.id, ticket_id=row.ticket_id, kind=row.kind, title=row.title, body=row.body,
                   read=row.read_at is not None, created_at=row.created_at)


class DeliveryRecord(Record):
    """One delivery attempt record as ``GET /api/notifications/deliveries`` lists it."""

    id: int
    channel: str
    target: str
    ticket_id: int | None = None
    event_id: int
    reason: str | None = None
    status: str
    attempts: int
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class DeliveryReport(BaseModel):
    """What one ``deliver(event, channel)`` call did, per target status (for the caller's logs)."""

    event_id: int
    channel: str
    sent: list[str] = Field(default_factory=list)
    already_sent: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
