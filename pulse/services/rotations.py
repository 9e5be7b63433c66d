"""Rotations: ordered agents with weights, for auto-assignment and escalation. CRUD like the other
reference data (``ReferenceService``), plus the preview of the next pick. Services never commit:
the request owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import NotFound, ValidationFailed
from pulse.domain.records import Record
from pulse.domain.rotation import RotationMemberRecord, RotationRecord, RotationSlot, preview_next
from pulse.models import Rotation, User
from pulse.repositories.reference import ReferenceRepository
from pulse.repositories.rotations import RotationRepository
from pulse.services.reference import ReferenceService


def _same_members(stored: Sequence[RotationSlot], wanted: list[dict[str, Any]], *keys: str) -> bool:
    return [tuple(getattr(slot, key) for key in keys) for slot in stored] == \
        [tuple(member[key] for key in keys) for member in wanted]


class RotationService(ReferenceService):
    """A rotation's ``members`` are replaced as a whole by a write that sends them. Changing who is
    in it, their order or their weights restarts the round-robin cycle (every member's state back
    to 0); pausing or resuming members keeps everyone's place."""

    model = Rotation
    record = RotationRecord
    label = "rotation"
    idempotency_scope = "rotations.create"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.rows: Any = RotationRepository(session)

    async def update(self, account_id: int, row_id: int, values: dict[str, Any], version: int | None) -> Record:
        await self._lock(account_id, row_id)  # edits and picks of one rotation take turns
        return await super().update(account_id, row_id, values, version)

    async def delete(self, account_id: int, row_id: int) -> None:
        await self._lock(account_id, row_id)
        await super().delete(account_id, row_id)

    async def next_user_id(self, account_id: int, rotation_id: int) -> int | None:
        """The member the next pick would return (None: no member is active). Advances nothing."""
        await self._load(account_id, rotation_id)
        return preview_next((await self.rows.members([rotation_id]))[rotation_id])

    async def _lock(self, account_id: int, row_id: int) -> None:
        if await self.rows.get(account_id, row_id, lock=True) is None:
            raise NotFound(f"rotation {row_id} not found")

    async def _records(self, rows: list[Any]) -> list[Record]:
        members = await self.rows.members([row.id for row in rows])
        return [
            RotationRecord.model_validate(row).model_copy(update={"members": [
                RotationMemberRecord(user_id=slot.user_id, weight=slot.weight, paused=slot.paused)
                for slot in members[row.id]
            ]})
            for row in rows
        ]

    async def _check(self, account_id: int, values: dict[str, Any]) -> None:
        """Every member is a user of the account, at most once (422 naming ``members[i].userId``)."""
        members = values.get("members")
        if not members:
            return
        users = ReferenceRepository(self.session, User)
        details, seen = [], {}
        for index, member in enumerate(members):
            user_id = member["user_id"]
            field = f"members[{index}].userId"
            if user_id in seen:
                details.append({"field": field, "message": f"user {user_id} is already members[{seen[user_id]}]"})
            elif await users.get(account_id, user_id) is None:
                details.append({"field": field, "message": f"no user with id {user_id} in this account"})
            seen.setdefault(user_id, index)
        if details:
            raise ValidationFailed("; ".join(f"{d['field']}: {d['message']}" for d in details), details=details)

    async def _store_extra(self, row: Any, extra: dict[str, Any]) -> bool:
        """Store the members when sent; whether they changed."""
        wanted = extra.get("members")
        if wanted is None:
            return False
        stored = (await self.rows.members([row.id]))[row.id]
        if _same_members(stored, wanted, "user_id", "weight", "paused"):
            return False
        if _same_members(stored, wanted, "user_id", "weight"):
            await self.rows.set_paused(row.id, {member["user_id"]: member["paused"] for member in wanted})
        else:
            await self.rows.replace_members(row.id, wanted)
        return True
