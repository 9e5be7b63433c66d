"""Rotations: ordered agents with weights. The weighted round-robin's position lives here, one
``current`` per member (``pulse.domain.rotation``), moved only by ``RotationRepository.pick_next``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from pulse.models.base import Base, created_at_column


class Rotation(Base):
    __tablename__ = "rotations"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class RotationMember(Base):
    """A member of a rotation at ``position`` (0-based, the rotation's order). A user is in a
    rotation at most once; deleting the user takes them out of it."""

    __tablename__ = "rotation_members"
    __table_args__ = (CheckConstraint("weight BETWEEN 1 AND 100", name="weight_range"),)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    current: Mapped[int] = mapped_column(BigInteger, server_default="0")
