"""Notification tables: each account's channel settings (SMTP, SMS gateway, Slack) and the record
of every delivery attempt. In-app notifications themselves live in ``notifications``
(``pulse.models.engine.Notification``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class NotificationSettings(Base):
    """One row per account; a channel column is null while that channel is not configured.
    Secrets (``password``, ``authToken``, ``webhookUrl``) are stored here and never rendered."""

    __tablename__ = "notification_settings"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    email: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    sms: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    slack: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = created_at_column()


class NotificationDelivery(Base):
    """One outbox event sent (or not) on one channel to one target: the audit trail of
    ``GET /api/notifications/deliveries`` and the idempotency key of the senders (a target whose
    row is ``sent`` is never sent to again). ``locked_until`` is the lease of the attempt under way."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "target", name="uq_notification_deliveries_event_channel_target"),
        Index("ix_notification_deliveries_account", "account_id", text("id DESC")),
        Index("ix_notification_deliveries_ticket", "account_id", "ticket_id", text("id DESC")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    retryable: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
