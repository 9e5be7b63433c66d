"""SLA tables: business calendars, policies, and the ticket event outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class SlaCalendar(Base):
    """Business hours: an IANA time zone, weekly windows ({"mon": [["09:00","17:00"]]}), holidays."""

    __tablename__ = "sla_calendars"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSONB)
    holidays: Mapped[list[date]] = mapped_column(ARRAY(Date), server_default="{}")
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class SlaPolicy(Base):
    """SLA targets. A *priority policy* (``conditions`` NULL) exists once per priority and account;
    *conditional policies* (``conditions`` set) take precedence when they match, first by
    ``position`` (the API's ``order``)."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        Index("uq_sla_policies_account_priority", "account_id", "priority", unique=True,
              postgresql_where=text("conditions IS NULL")),
        Index("ix_sla_policies_account_position", "account_id", "position", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str | None] = mapped_column(String(16))
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    at_risk_percent: Mapped[int] = mapped_column(Integer, server_default="80")
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("sla_calendars.id"))
    pause_statuses: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{waiting_customer}")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class TicketEvent(Base):
    """Outbox of events a ticket's workflow raised (``sla_at_risk``, ``sla_breached`` …), written in
    the same transaction as the change. Automation and escalation consume it; ``created_at`` is the
    database's clock at the write, ``occurred_at`` the instant the event is about."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket", "ticket_id", "id"),
        Index("ix_ticket_events_account_type", "account_id", "event_type", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
