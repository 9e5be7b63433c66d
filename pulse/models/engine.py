"""The ticket engine's tables: the SLA clock of each ticket, outbox deliveries, in-app
notifications and the agenda probes (see ``pulse.domain.agenda``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class TicketSlaClock(Base):
    """The SLA ledger of one ticket (``pulse.domain.sla.SlaLedger``), written only by the ticket's
    write activities, in the same transaction as the ticket row it describes."""

    __tablename__ = "ticket_sla_clocks"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    ledger: Mapped[dict[str, Any]] = mapped_column(JSONB)


class OutboxDelivery(Base):
    """One outbox event handed to one consumer: recorded once the consumer has done its part."""

    __tablename__ = "outbox_deliveries"
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivered_at: Mapped[datetime] = created_at_column()


class Notification(Base):
    """An in-app notification for one user (a mention, later assignments and escalations)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id", "kind", name="uq_notifications_event_user_kind"),
        Index("ix_notifications_user", "account_id", "user_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # goes with its user
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class AgendaProbe(Base):
    """An account-wide agenda rule due ``after_minutes`` after each ticket's creation."""

    __tablename__ = "agenda_probes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    after_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
