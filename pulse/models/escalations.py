"""Escalation rules and each ticket's escalation history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class EscalationRule(Base):
    __tablename__ = "escalation_rules"
    __table_args__ = (Index("ix_escalation_rules_account", "account_id", "priority", "level", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    priority: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    when: Mapped[dict[str, Any]] = mapped_column(JSONB)
    escalate_to: Mapped[str] = mapped_column(String(32))
    escalate_to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    escalate_to_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    escalate_to_rotation_id: Mapped[int | None] = mapped_column(BigInteger)
    reassign: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    notification_channels: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default="{in_app}")
    business_hours_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    add_internal_note: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    internal_note_template: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class TicketEscalation(Base):
    """One escalation of one ticket (written in the escalation's own transaction)."""

    __tablename__ = "ticket_escalations"
    __table_args__ = (Index("ix_ticket_escalations_ticket", "ticket_id", "id"),
                      Index("ix_ticket_escalations_rule", "rule_id", "escalated_at"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    rule_id: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[int] = mapped_column(Integer)
    cycle: Mapped[int] = mapped_column(Integer)
    threshold_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalate_to: Mapped[str] = mapped_column(String(32))
    target_user_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    target_team_id: Mapped[int | None] = mapped_column(BigInteger)
    reassigned: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default="{}")
