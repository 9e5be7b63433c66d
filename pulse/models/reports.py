"""The reports' rollups (migrations 0018, 0021; ``pulse.domain.reports``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base


class MarkCounts:
    """The sums of ``pulse.domain.reports.Marks``."""

    created: Mapped[int] = mapped_column(Integer, server_default="0")
    resolved: Mapped[int] = mapped_column(Integer, server_default="0")
    reopened: Mapped[int] = mapped_column(Integer, server_default="0")
    closed: Mapped[int] = mapped_column(Integer, server_default="0")
    backlog_change: Mapped[int] = mapped_column(Integer, server_default="0")


class TicketReportSlot(MarkCounts, Base):
    """Per account and 15-minute UTC slot: tickets created, resolutions, reopens, closes and the
    change in backlog. Written in every ticket write's transaction; deleted tickets count nowhere."""

    __tablename__ = "ticket_report_slots"
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class TicketReportDay(MarkCounts, Base):
    """The same sums per account and UTC day: the backlog before a report's range, and whole UTC
    days, read from a few hundred rows instead of every slot. Written with the slots."""

    __tablename__ = "ticket_report_days"
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class TicketSummaryDay(Base):
    """The summary's figures of the tickets created on a UTC day, in total and per priority, team
    and category (``pulse.domain.reports.summary_marks``). Written in each ticket write's
    transaction when the ticket's figures change; deleted tickets count nowhere."""

    __tablename__ = "ticket_summary_days"
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    created_on: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(32), primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, server_default="0")
    escalated: Mapped[int] = mapped_column(Integer, server_default="0")
    first_response_met: Mapped[int] = mapped_column(Integer, server_default="0")
    first_response_breached: Mapped[int] = mapped_column(Integer, server_default="0")
    resolution_met: Mapped[int] = mapped_column(Integer, server_default="0")
    resolution_breached: Mapped[int] = mapped_column(Integer, server_default="0")
    first_response_minutes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    first_responses: Mapped[int] = mapped_column(Integer, server_default="0")
    resolution_minutes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    resolutions: Mapped[int] = mapped_column(Integer, server_default="0")
