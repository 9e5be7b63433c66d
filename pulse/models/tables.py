from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    last_ticket_number: Mapped[int] = mapped_column(Integer, server_default="0")
    # Bumped by every change to the rules the tickets' agendas read (``pulse.domain.agenda``).
    rules_generation: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(50), server_default="agent")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class AccountMember(Base):
    """Which accounts a user may act in (``x-account-id``); the user's own account is primary."""

    __tablename__ = "account_members"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    manager_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    slack_webhook_url: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class TicketType(Base):
    __tablename__ = "ticket_types"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # Auto-assignment (migration 0009): a new ticket of this type goes to the rotation's next member.
    auto_assignment_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    rotation_id: Mapped[int | None] = mapped_column(ForeignKey("rotations.id"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class TicketCategory(Base):
    __tablename__ = "ticket_categories"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("account_id", "number", name="uq_tickets_account_number"),
        Index("ix_tickets_account_created", "account_id", text("created_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_status_priority", "account_id", "status", text("priority_rank DESC"),
              text("created_at DESC"), text("id DESC"), postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_status_created", "account_id", "status", text("created_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),  # migration 0004
        Index("ix_tickets_account_status_updated", "account_id", "status", text("updated_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),  # migration 0005
        # A team's / an agent's queue newest first (migration 0002b; they replace the two-column ones).
        Index("ix_tickets_account_team_created", "account_id", "assigned_to_team_id", text("created_at DESC"),
              text("id DESC"), postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_user_created", "account_id", "assigned_to_user_id", text("created_at DESC"),
              text("id DESC"), postgresql_where=text("deleted_at IS NULL")),
        # An agent's tickets by last update (migration 0023).
        Index("ix_tickets_account_user_updated", "account_id", "assigned_to_user_id", text("updated_at DESC"),
              text("id DESC"), postgresql_where=text("deleted_at IS NULL")),
        # … and their queues by status, most urgent first; also the exact count of one (migration 0002c).
        Index("ix_tickets_account_team_queue", "account_id", "assigned_to_team_id", "status",
              text("priority_rank DESC"), text("created_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_user_queue", "account_id", "assigned_to_user_id", "status",
              text("priority_rank DESC"), text("created_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),
        # Search, filters and sorts at scale (migration 0002).
        Index("ix_tickets_search", "search_vector", postgresql_using="gin",
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_search_public", "search_public", postgresql_using="gin",
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_custom_fields", "custom_fields", postgresql_using="gin",
              postgresql_ops={"custom_fields": "jsonb_path_ops"}, postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_tags", "tags", postgresql_using="gin", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_external", "account_id", "external_source", "external_ticket_id",
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_priority", "account_id", text("priority_rank DESC"), text("created_at DESC"),
              text("id DESC"), postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_account_updated", "account_id", text("updated_at DESC"), text("id DESC"),
              postgresql_where=text("deleted_at IS NULL")),
        # SLA (migration 0003): the slaStatus filter, and compliance reports as index-only scans.
        Index("ix_tickets_account_sla_status", "account_id", "sla_status",
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_tickets_sla_compliance", "account_id", "created_at",
              postgresql_include=["priority", "assigned_to_team_id", "sla_first_response_met",
                                  "sla_resolution_met", "first_response_time", "resolution_time"],
              postgresql_where=text("deleted_at IS NULL AND sla_policy_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    assigned_to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_to_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    type_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_types.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_categories.id"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    requester_name: Mapped[str | None] = mapped_column(String(200))
    requester_email: Mapped[str | None] = mapped_column(String(320))
    requester_phone: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(16), server_default="api")
    sla_policy_id: Mapped[int | None] = mapped_column(BigInteger)
    sla_status: Mapped[str | None] = mapped_column(String(16))
    sla_first_response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_first_response_met: Mapped[bool | None] = mapped_column(Boolean)
    sla_resolution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_resolution_met: Mapped[bool | None] = mapped_column(Boolean)
    sla_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_total_paused_time: Mapped[int] = mapped_column(Integer, server_default="0")
    first_response_time: Mapped[int | None] = mapped_column(Integer)
    resolution_time: Mapped[int | None] = mapped_column(Integer)
    response_count: Mapped[int] = mapped_column(Integer, server_default="0")
    internal_note_count: Mapped[int] = mapped_column(Integer, server_default="0")
    attachment_count: Mapped[int] = mapped_column(Integer, server_default="0")
    reopen_count: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_count: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_customer_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    external_source: Mapped[str | None] = mapped_column(String(32))
    external_ticket_id: Mapped[str | None] = mapped_column(String(200))
    merged_into_ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_reopened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    write_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Full-text documents: subject (weight A), description (B), public comments (C), internal notes
    # (D, only in search_vector; search_public is what callers without writeSupport search). Kept
    # current by TicketWriter (TicketSearchIndex); deferred so ticket reads never load them.
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, server_default=text("''::tsvector"), deferred=True)
    search_public: Mapped[Any] = mapped_column(TSVECTOR, server_default=text("''::tsvector"), deferred=True)


class TicketComment(Base):
    __tablename__ = "ticket_comments"
    __table_args__ = (
        Index("ix_ticket_comments_ticket_created", "ticket_id", "created_at", "id"),
        Index("uq_ticket_comments_merged_copy", "ticket_id", "merged_from_comment_id", unique=True,
              postgresql_where=text("merged_from_comment_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    body: Mapped[str] = mapped_column(Text)
    is_internal: Mapped[bool] = mapped_column(Boolean)
    notify_customer: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    author_type: Mapped[str] = mapped_column(String(16))
    author_user_id: Mapped[int | None] = mapped_column(BigInteger)
    mentions: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A copy made by a merge: the ticket and comment it was copied from.
    merged_from_ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    merged_from_comment_id: Mapped[int | None] = mapped_column(BigInteger)


class TimelineEvent(Base):
    __tablename__ = "ticket_timeline"
    __table_args__ = (Index("ix_ticket_timeline_ticket", "ticket_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    field: Mapped[str | None] = mapped_column(String(64))
    from_value: Mapped[Any] = mapped_column(JSONB)
    to_value: Mapped[Any] = mapped_column(JSONB)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """``Idempotency-Key`` of a create: the first result is replayed for 24 h."""

    __tablename__ = "idempotency_keys"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    resource_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_number: Mapped[int | None] = mapped_column(Integer)  # a ticket's number, allocated with its id
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


class AppliedCommand(Base):
    """Makes activities idempotent: a retried command returns the stored outcome."""

    __tablename__ = "applied_commands"
    command_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
