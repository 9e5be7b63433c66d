"""Rotations and their members, and the atomic weighted round-robin pick."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Conflict
from pulse.domain.ids import is_storable_id
from pulse.domain.rotation import RotationSlot, pick_next
from pulse.models import Rotation, RotationMember

UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION = "23505", "23503"


class RotationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the rotation row ------------------------------------------------------------------------

    async def get(self, account_id: int, rotation_id: int, *, lock: bool = False) -> Rotation | None:
        """The account's rotation; with ``lock`` its row is locked (``FOR NO KEY UPDATE``) until
        the transaction ends, which serialises picks and edits of one rotation."""
        if not is_storable_id(rotation_id):
            return None  # no such row can exist, and PostgreSQL would reject the number
        statement = select(Rotation).where(Rotation.account_id == account_id, Rotation.id == rotation_id)
        if lock:
            # NO KEY UPDATE, not UPDATE: it still excludes other picks and edits, but does not
            # block rows that merely reference the rotation (a ticket type pointing at it).
            statement = statement.with_for_update(key_share=True).execution_options(populate_existing=True)
        return await self.session.scalar(statement)

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[Sequence[Rotation], int]:
        statement = select(Rotation).where(Rotation.account_id == account_id)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(statement.order_by(Rotation.id).limit(page_size).offset((page - 1) * page_size))
        return list(rows), int(total or 0)

    async def add(self, row: Rotation) -> Rotation:
        self.session.add(row)
        await self.save(row)
        return row

    async def save(self, row: Rotation, *, deleting: bool = False) -> None:
        """Write pending changes. A name another rotation of the account has is a 409
        ``duplicate``; deleting a rotation that ticket types still point at is a 409 ``in_use``."""
        name, row_id = row.name, row.id  # a failed flush expires the row: read them first
        try:
            await self.session.flush()
        except IntegrityError as error:
            state = getattr(error.orig, "sqlstate", None)
            if state == UNIQUE_VIOLATION:
                raise Conflict(f"a rotation named {name!r} already exists; choose another name",
                               code="duplicate") from None
            if state == FOREIGN_KEY_VIOLATION and deleting:
                raise Conflict(f"rotation {row_id} is in use (ticket types point at it); "
                               "point them elsewhere first", code="in_use") from None
            raise

    async def delete(self, row: Rotation) -> None:
        await self.session.delete(row)
        await self.save(row, deleting=True)  # its members go with it (ON DELETE CASCADE)

    # --- members ---------------------------------------------------------------------------------

    async def members(self, rotation_ids: list[int]) -> dict[int, list[RotationSlot]]:
        """Each rotation's members in order, with their round-robin state."""
        result: dict[int, list[RotationSlot]] = {rotation_id: [] for rotation_id in rotation_ids}
        if not rotation_ids:
            return result
        rows = await self.session.execute(
            select(RotationMember.rotation_id, RotationMember.user_id, RotationMember.weight,
                   RotationMember.paused, RotationMember.current)
            .where(RotationMember.rotation_id.in_(rotation_ids))
            .order_by(RotationMember.rotation_id, RotationMember.position)
        )
        for rotation_id, user_id, weight, paused, current in rows:
            result[rotation_id].append(RotationSlot(user_id=user_id, weight=weight, paused=paused, current=current))
        return result

    async def replace_members(self, rotation_id: int, members: list[dict[str, Any]]) -> None:
        """The rotation's members become ``members`` (``user_id``, ``weight``, ``paused``) in this
        order, every one's round-robin state back at 0."""
        await self.session.execute(delete(RotationMember).where(RotationMember.rotation_id == rotation_id))
        if members:
            await self.session.execute(insert(RotationMember), [
                {"rotation_id": rotation_id, "user_id": member["user_id"], "position": position,
                 "weight": member["weight"], "paused": member["paused"], "current": 0}
                for position, member in enumerate(members)
            ])

    async def set_paused(self, rotation_id: int, paused: dict[int, bool]) -> None:
        """Pause or resume members (by user id), keeping everyone's round-robin state."""
        await self.session.execute(
            update(RotationMember)
            .where(RotationMember.rotation_id == rotation_id, RotationMember.user_id.in_(list(paused)))
            .values(paused=case(paused, value=RotationMember.user_id))
            .execution_options(synchronize_session=False)
        )

    # --- the pick --------------------------------------------------------------------------------

    async def pick_next(self, account_id: int, rotation_id: int) -> int | None:
        """Advance the rotation by one pick and return the picked user's id; None when the
        rotation does not exist (in this account), has no members or every member is paused.

        Runs inside the caller's transaction and never commits: the pick counts once that
        transaction commits, and not at all if it rolls back. Three statements: lock the rotation
        row (concurrent picks and edits of this rotation wait here, so each one sees the state
        the previous one committed), read the members (a fresh snapshot, taken after the lock),
        write the new states the pure algorithm computed."""
        if await self.get(account_id, rotation_id, lock=True) is None:
            return None
        members = (await self.members([rotation_id]))[rotation_id]
        picked = pick_next(members)
        await self.set_currents(rotation_id, picked.changed(members))
        return picked.user_id

    async def set_currents(self, rotation_id: int, changed: dict[int, int]) -> None:
        """Store members' round-robin state (by user id) after picks made under the rotation's lock."""
        if changed:
            await self.session.execute(
                update(RotationMember)
                .where(RotationMember.rotation_id == rotation_id, RotationMember.user_id.in_(list(changed)))
                .values(current=case(changed, value=RotationMember.user_id))
                .execution_options(synchronize_session=False)
            )
