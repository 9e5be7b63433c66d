"""Maverick integration tables (migration 0014): each account's config, its category mappings,
the webhook events received (one row per event id) and the sync runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class MaverickConfig(Base):
    """One row per account. ``api_key_encrypted`` and ``webhook_secret_encrypted`` hold
    ``pulse.secretbox`` ciphertexts; ``status_mapping`` holds only the account's overrides."""

    __tablename__ = "maverick_configs"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    api_url: Mapped[str | None] = mapped_column(String(2000))
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    auto_sync: Mapped[bool] = mapped_column(Boolean, server_default="true")
    sync_interval_minutes: Mapped[int] = mapped_column(Integer, server_default="15")
    sync_direction: Mapped[str] = mapped_column(String(16), server_default="bidirectional")
    default_assignee_id: Mapped[int | None] = mapped_column(BigInteger)
    default_team_id: Mapped[int | None] = mapped_column(BigInteger)
    sync_internal_notes: Mapped[bool] = mapped_column(Boolean, server_default="false")
    status_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    sync_cursor: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class MaverickCategoryMapping(Base):
    __tablename__ = "maverick_category_mappings"
    __table_args__ = (UniqueConstraint("account_id", "maverick_category_id",
                                       name="uq_maverick_category_mappings_account_category"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    maverick_category_id: Mapped[int] = mapped_column(BigInteger)
    maverick_category_name: Mapped[str | None] = mapped_column(String(200))
    pulse_ticket_type_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_types.id"))
    pulse_category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_categories.id"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class MaverickWebhookEvent(Base):
    """A verified event, once per (account, event id); ``deliveries`` counts how often it came."""

    __tablename__ = "maverick_webhook_events"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    deliveries: Mapped[int] = mapped_column(Integer, server_default="1")
    received_at: Mapped[datetime] = created_at_column()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaverickSyncRun(Base):
    __tablename__ = "maverick_sync_runs"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    direction: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pulled: Mapped[int] = mapped_column(Integer, server_default="0")
    pushed: Mapped[int] = mapped_column(Integer, server_default="0")
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    skipped: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    errors: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")


class MaverickTicketLink(Base):
    """A Maverick ticket's Pulse ticket: its id and number are reserved here before the ticket's
    workflow creates it, once per Maverick id. ``remote_fields`` are the remote values last applied
    (a later pull changes only what changed remotely since)."""

    __tablename__ = "maverick_ticket_links"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    maverick_ticket_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    number: Mapped[int] = mapped_column(Integer)
    remote_version: Mapped[int] = mapped_column(Integer, server_default="0")
    remote_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    remote_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
