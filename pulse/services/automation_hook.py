"""The engine's side of automation: what the pure evaluation (``pulse.domain.automation_eval``,
run by the change pipeline) cannot do itself, done in the write's transaction.

- Rotations: a rule that assigns from a rotation needs its members' round-robin state. The
  evaluation asks for it (``rotations_needed``); :meth:`AutomationHook.rotations` locks those
  rotations (as ``RotationRepository.pick_next`` does) and reads their state, the pipeline runs
  again with it, and :meth:`store` writes the state the picks left.
- Internal notes get their comment rows (and search text); ``to: manager`` notifications get
  their receivers (the assigned team's manager, else the account's admins).
- Every evaluation is stored with the write's outcome (``TicketStore.record_outcome``, one statement).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain import records
from pulse.domain.automation_eval import NOTIFICATION_EVENT
from pulse.domain.changes import REFERENCE_FIELDS, TicketEvent
from pulse.domain.pipeline import PipelineResult
from pulse.domain.rotation import RotationSlot
from pulse.repositories.escalations import EscalationRuleRepository
from pulse.repositories.rotations import RotationRepository
from pulse.repositories.ticket_lists import TicketSearchIndex
from pulse.repositories.ticket_store import TicketStore


class AutomationHook:
    def __init__(self, session: AsyncSession, account_id: int, *, lock: bool = True) -> None:
        self.session = session
        self.account_id = account_id
        self.lock = lock  # False: a dry run (reads the rotations' state without holding them)
        self.rotation_repository = RotationRepository(session)
        self.loaded: dict[int, list[RotationSlot]] = {}

    async def rotations(self, rotation_ids: list[int]) -> dict[int, list[RotationSlot]]:
        """The state of these rotations (locked until the commit in a real write); a rotation of
        another account, or none, has no members (a pick from it assigns nobody)."""
        for rotation_id in rotation_ids:
            if rotation_id in self.loaded:
                continue
            found = await self.rotation_repository.get(self.account_id, rotation_id, lock=self.lock)
            self.loaded[rotation_id] = [] if found is None else (
                await self.rotation_repository.members([rotation_id]))[rotation_id]
        return dict(self.loaded)

    async def missing_references(self, result: PipelineResult, known: frozenset[tuple[str, int]]) -> set[tuple[str, int]]:
        """Users and teams the rules assigned that the account no longer has (deleted after a rule
        named them), not yet in ``known``: evaluate again with them, and the rules assigning them
        fail alone instead of the whole write."""
        assigned = {(event.field, int(event.to_value)) for event in result.events
                    if event.actor.kind.startswith("automation:") and event.field in REFERENCE_FIELDS
                    and event.to_value is not None} - known
        store = TicketStore(self.session)
        return {(column, value) for column, value in assigned
                if await store.missing_references(self.account_id, {column: value})}

    async def store(self, ticket: records.Ticket, result: PipelineResult) -> list[TicketEvent]:
        """Write what the rules did besides the ticket row and the audit trail; the events to store,
        completed."""
        for rotation_id, slots in result.rotations.items():
            before = self.loaded.get(rotation_id)
            if before is None:
                continue
            changed = {slot.user_id: slot.current for slot, old in zip(slots, before) if slot.current != old.current}
            await self.rotation_repository.set_currents(rotation_id, changed)
        return [await self._completed(ticket, event) for event in result.events]

    async def _completed(self, ticket: records.Ticket, event: TicketEvent) -> TicketEvent:
        if event.type == "comment_added" and "note" in event.data:
            data: dict[str, Any] = dict(event.data)
            body = data.pop("note")
            stored = await TicketStore(self.session).add_comment({
                "account_id": self.account_id, "ticket_id": ticket.id, "body": body, "is_internal": True,
                "notify_customer": False, "author_type": "system", "author_user_id": None, "mentions": [],
                "created_at": event.occurred_at,
            })
            await TicketSearchIndex(self.session).append_comment(ticket.id, body, internal=True)
            return event.model_copy(update={"data": {**data, "commentId": stored.id}})
        if event.type == NOTIFICATION_EVENT and "managerOfTeamId" in event.data:
            data = dict(event.data)
            team_id = data.pop("managerOfTeamId")
            people = EscalationRuleRepository(self.session)
            manager = await people.team_manager(self.account_id, team_id) if team_id is not None else None
            user_ids = [manager] if manager is not None else await people.admins(self.account_id)
            data["notify"] = {**data["notify"], "userIds": user_ids}
            return event.model_copy(update={"data": data})
        return event
