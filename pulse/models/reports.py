"""The ticket-volume rollup of the reports (migration 0018; ``pulse.domain.reports``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base


class TicketReportSlot(Base):
    """Per account and 15-minute UTC slot: tickets created, resolutions, reopens, closes and the
    change in backlog. Written in every ticket write's transaction; deleted tickets count nowhere."""

    __tablename__ = "ticket_report_slots"
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    resolved: Mapped[int] = mapped_column(Integer, server_default="0")
    reopened: Mapped[int] = mapped_column(Integer, server_default="0")
    closed: Mapped[int] = mapped_column(Integer, server_default="0")
    backlog_change: Mapped[int] = mapped_column(Integer, server_default="0")
