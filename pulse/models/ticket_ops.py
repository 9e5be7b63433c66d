"""Tables for working with many tickets at once: saved views (the queues agents work from) and
bulk operations with one row per ticket (its outcome)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class SavedView(Base):
    """A named ticket list: filters + sort. Owned by its creator; ``shared`` shows it to the account."""

    __tablename__ = "saved_views"
    __table_args__ = (
        Index("ix_saved_views_account_owner", "account_id", "owner_user_id"),
        Index("ix_saved_views_account_shared", "account_id", postgresql_where=text("shared")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    sort: Mapped[str | None] = mapped_column(String(500))
    shared: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class BulkOperation(Base):
    """One ``POST /api/tickets/bulk``: what to do, to how many tickets, and where it stands."""

    __tablename__ = "bulk_operations"
    __table_args__ = (Index("ix_bulk_operations_account", "account_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    operation: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    total: Mapped[int] = mapped_column(Integer)
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BulkOperationItem(Base):
    """One ticket of a bulk operation: ``pending`` until its outcome is recorded, exactly once."""

    __tablename__ = "bulk_operation_items"
    __table_args__ = (Index("ix_bulk_operation_items_status", "bulk_operation_id", "status"),)
    bulk_operation_id: Mapped[int] = mapped_column(
        ForeignKey("bulk_operations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
