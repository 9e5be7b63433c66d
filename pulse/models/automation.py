"""Automation rules and the audit trail of their evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class AutomationRule(Base):
    __tablename__ = "automation_rules"
    __table_args__ = (Index("ix_automation_rules_account", "account_id", "execution_order", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    trigger: Mapped[str] = mapped_column(String(32))
    trigger_config: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    conditions: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    conditions_match: Mapped[str] = mapped_column(String(8), server_default="all")
    actions: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    execution_order: Mapped[int] = mapped_column(Integer, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class AutomationExecution(Base):
    """One evaluation of one rule on one ticket (written in the evaluating write's transaction)."""

    __tablename__ = "automation_executions"
    __table_args__ = (Index("ix_automation_executions_rule", "rule_id", "executed_at", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)  # no foreign keys: see migration 0013
    rule_id: Mapped[int] = mapped_column(BigInteger)
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    conditions_matched: Mapped[bool] = mapped_column(Boolean)
    condition_results: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    actions_performed: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    before_values: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    after_values: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    error_message: Mapped[str | None] = mapped_column(Text)
    caused_by: Mapped[dict[str, Any]] = mapped_column(JSONB)
    depth: Mapped[int] = mapped_column(Integer, server_default="0")
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    execution_time_ms: Mapped[float] = mapped_column(Float, server_default="0")


class AutomationSkips(Base):
    """The evaluations of one write whose conditions did not hold: one row for all of them
    (``skipped``: ``[{rule_id, trigger, condition_results, caused_by, depth, execution_time_ms}]``,
    ``json``: stored, not queried inside), a rule at most once per row (a rule skipped again in the
    same write is in the write's next row)."""

    __tablename__ = "automation_skips"
    __table_args__ = (Index("ix_automation_skips_rule_ids", "rule_ids", postgresql_using="gin"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True,
                                    server_default=text("nextval('automation_executions_id_seq'::regclass)"))
    account_id: Mapped[int] = mapped_column(BigInteger)
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rule_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    skipped: Mapped[list[Any]] = mapped_column(JSON)
