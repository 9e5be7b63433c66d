"""Rotations: an ordered list of agents with weights, picked by smooth weighted round-robin.

The algorithm is nginx's "smooth weighted round-robin". Every member keeps a number, ``current``.
A pick adds each active member's ``weight`` to its ``current``, picks the member with the largest
``current`` (ties: the earlier member in the rotation's order) and subtracts the active members'
total weight from the picked one. Paused members are skipped and their ``current`` is left alone.

Started from all zeros, the picks repeat with a period of ``sum(weights)`` and every period (so
every window of ``sum(weights)`` consecutive picks) picks each member exactly ``weight`` times,
spread out rather than in runs (3:2:1 picks A B A C B A).

This module is pure: the repository stores ``current`` per member in PostgreSQL and runs
:func:`pick_next` under a lock on the rotation; the preview runs it and throws the state away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from pulse.domain.records import Record

MIN_WEIGHT, MAX_WEIGHT = 1, 100


@dataclass(frozen=True)
class RotationSlot:
    """One member of a rotation as the algorithm sees it, in the rotation's order."""

    user_id: int
    weight: int
    paused: bool = False
    current: int = 0

    @property
    def active(self) -> bool:
        return not self.paused and self.weight > 0


@dataclass(frozen=True)
class RotationPick:
    """The outcome of one pick: who (None when no member is active) and every member's
    ``current`` afterwards, in the rotation's order (a paused member's is unchanged)."""

    user_id: int | None
    currents: tuple[int, ...]

    def changed(self, before: Sequence[RotationSlot]) -> dict[int, int]:
        """The new ``current`` of the members whose ``current`` changed, by user id."""
        return {slot.user_id: after for slot, after in zip(before, self.currents, strict=True)
                if slot.current != after}


def pick_next(members: Sequence[RotationSlot]) -> RotationPick:
    """One step of smooth weighted round-robin over ``members`` (in the rotation's order)."""
    currents = [member.current for member in members]
    active = [index for index, member in enumerate(members) if member.active]
    if not active:
        return RotationPick(user_id=None, currents=tuple(currents))
    total = 0
    for index in active:
        currents[index] += members[index].weight
        total += members[index].weight
    chosen = active[0]
    for index in active[1:]:
        if currents[index] > currents[chosen]:  # strictly larger: a tie keeps the earlier member
            chosen = index
    currents[chosen] -= total
    return RotationPick(user_id=members[chosen].user_id, currents=tuple(currents))


def preview_next(members: Sequence[RotationSlot]) -> int | None:
    """The member the next pick would return, without advancing anything."""
    return pick_next(members).user_id


# --- read models (what the service returns and the API renders) ---------------------------------


class RotationMemberRecord(Record):
    user_id: int
    weight: int
    paused: bool


class RotationRecord(Record):
    id: int
    name: str
    members: list[RotationMemberRecord] = []
    version: int
    created_at: datetime
    updated_at: datetime
