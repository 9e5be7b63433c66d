"""Ticket attachments (migrations 0014, 0019): metadata per attachment, content once per (account, sha256)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, ForeignKeyConstraint, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class AttachmentContent(Base):
    """The bytes, stored once per account and content hash (the same file attached twice, or by
    two tickets, is one row)."""

    __tablename__ = "attachment_contents"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = created_at_column()


class TicketAttachment(Base):
    __tablename__ = "ticket_attachments"
    __table_args__ = (
        ForeignKeyConstraint(["account_id", "sha256"], ["attachment_contents.account_id", "attachment_contents.sha256"],
                             name="fk_ticket_attachments_content"),
        Index("ix_ticket_attachments_ticket", "ticket_id", "id"),
        Index("uq_ticket_attachments_external", "ticket_id", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("uq_ticket_attachments_merged_copy", "ticket_id", "merged_from_attachment_id", unique=True,
              postgresql_where=text("merged_from_attachment_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), server_default="pulse")
    external_id: Mapped[str | None] = mapped_column(String(200))  # the Maverick document it came from or went to
    created_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    # A copy made by a merge (on the primary): the ticket and attachment it was copied from.
    merged_from_ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    merged_from_attachment_id: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
