"""Reference data that tickets point at: users, teams, ticket types, ticket categories. One service
per kind, sharing create/read/update/delete; a team also stores its members. Services never
commit: the request owns the transaction."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import NotFound, ValidationFailed, VersionConflict, field_error
from pulse.domain.records import Record
from pulse.domain.settings_records import NamedRecord, TeamRecord, TicketTypeRecord, UserRecord
from pulse.models import Team, TicketCategory, TicketType, User
from pulse.repositories.idempotency import IdempotencyRepository
from pulse.repositories.reference import ReferenceRepository, TeamMemberRepository
from pulse.repositories.rotations import RotationRepository


async def _check_users(session: AsyncSession, account_id: int, field: str, user_ids: list[int]) -> None:
    found = await ReferenceRepository(session, User).existing_ids(account_id, user_ids)
    missing = [uid for uid in dict.fromkeys(user_ids) if uid not in found]
    if missing:
        raise ValidationFailed("unknown users", details=[{"field": field, "message": f"no user with id {uid} in this account"} for uid in missing])


def _apply_patch(row: Any, changes: dict[str, Any], version: int | None) -> bool:
    """Set the changed columns; whether anything changed."""
    if version is not None and version != row.version:
        raise VersionConflict(f"version is {row.version}, not {version}; reload and retry",
                              details=[{"field": "version", "message": f"current version is {row.version}"}])
    changed = False
    for field, value in changes.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed


class ReferenceService:
    """One kind of reference data of an account. ``version`` goes up with every change."""

    model: type[Any]
    record: type[Record]
    label: str
    idempotency_scope: str

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.rows = ReferenceRepository(session, self.model)

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[list[Record], int]:
        rows, total = await self.rows.list(account_id, page=page, page_size=page_size)
        return await self._records(list(rows)), total

    async def get(self, account_id: int, row_id: int) -> Record:
        return (await self._records([await self._load(account_id, row_id)]))[0]

    async def create(self, account_id: int, values: dict[str, Any], *, idempotency_key: str | None,
                     request_hash: str) -> tuple[Record, bool]:
        """The new record, and whether it was created (False when ``idempotency_key`` replays an
        earlier create)."""
        keys = IdempotencyRepository(self.session)
        if idempotency_key:
            earlier = await keys.claim(account_id, self.idempotency_scope, idempotency_key, request_hash)
            if earlier is not None:
                return await self.get(account_id, earlier), False
        await self._check(account_id, values)
        values, extra = self._split(values)
        row = await self.rows.add(self.model(account_id=account_id, **values))
        await self._store_extra(row, extra)
        if idempotency_key:
            await keys.remember(account_id, self.idempotency_scope, idempotency_key, row.id)
        await self.session.refresh(row)
        return (await self._records([row]))[0], True

    async def update(self, account_id: int, row_id: int, values: dict[str, Any], version: int | None) -> Record:
        row = await self._load(account_id, row_id)
        await self._check(account_id, values)
        values, extra = self._split(values)
        changed = _apply_patch(row, values, version)
        if extra:
            changed = await self._store_extra(row, extra) or changed
        if changed:  # a PATCH that changes nothing keeps the version
            row.version += 1
            row.updated_at = datetime.now(timezone.utc)
        await self.rows.save(row)
        return (await self._records([row]))[0]

    async def delete(self, account_id: int, row_id: int) -> None:
        await self.rows.delete(await self._load(account_id, row_id))

    async def _load(self, account_id: int, row_id: int) -> Any:
        row = await self.rows.get(account_id, row_id)
        if row is None:
            raise NotFound(f"{self.label} {row_id} not found")
        return row

    def _split(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The values of the row's columns, and the others (a team's members)."""
        columns = {k: v for k, v in values.items() if hasattr(self.model, k)}
        return columns, {k: v for k, v in values.items() if k not in columns}

    # what a kind adds

    async def _records(self, rows: list[Any]) -> list[Record]:
        return [self.record.model_validate(row) for row in rows]

    async def _check(self, account_id: int, values: dict[str, Any]) -> None:
        """Reject values that point at what the account lacks."""

    async def _store_extra(self, row: Any, extra: dict[str, Any]) -> bool:
        """Store what is not a column of the row; whether it changed."""
        return False


class UserService(ReferenceService):
    model = User
    record = UserRecord
    label = "user"
    idempotency_scope = "users.create"


class TicketTypeService(ReferenceService):
    """With ``auto_assignment_enabled`` a type needs a ``rotation_id``, a rotation of the account."""

    model = TicketType
    record = TicketTypeRecord
    label = "ticket type"
    idempotency_scope = "ticket-types.create"

    async def create(self, account_id: int, values: dict[str, Any], *, idempotency_key: str | None,
                     request_hash: str) -> tuple[Record, bool]:
        self._check_auto_assignment(values.get("auto_assignment_enabled", False), values.get("rotation_id"))
        return await super().create(account_id, values, idempotency_key=idempotency_key, request_hash=request_hash)

    async def update(self, account_id: int, row_id: int, values: dict[str, Any], version: int | None) -> Record:
        if "auto_assignment_enabled" in values or "rotation_id" in values:
            row = await self._load(account_id, row_id)
            self._check_auto_assignment(values.get("auto_assignment_enabled", row.auto_assignment_enabled),
                                        values.get("rotation_id", row.rotation_id))
        return await super().update(account_id, row_id, values, version)

    async def _check(self, account_id: int, values: dict[str, Any]) -> None:
        rotation_id = values.get("rotation_id")
        if rotation_id is not None and await RotationRepository(self.session).get(account_id, rotation_id) is None:
            raise field_error("rotationId", f"no rotation with id {rotation_id} in this account")

    @staticmethod
    def _check_auto_assignment(enabled: bool, rotation_id: int | None) -> None:
        if enabled and rotation_id is None:
            raise field_error("rotationId", "auto-assignment needs a rotation: set rotationId, "
                                            "or set autoAssignmentEnabled to false")


class TicketCategoryService(ReferenceService):
    model = TicketCategory
    record = NamedRecord
    label = "ticket category"
    idempotency_scope = "ticket-categories.create"


class TeamService(ReferenceService):
    model = Team
    record = TeamRecord
    label = "team"
    idempotency_scope = "teams.create"

    async def _records(self, rows: list[Any]) -> list[Record]:
        members = await TeamMemberRepository(self.session).members([team.id for team in rows])
        return [TeamRecord.model_validate(team).model_copy(update={"member_ids": members[team.id]}) for team in rows]

    async def _check(self, account_id: int, values: dict[str, Any]) -> None:
        if values.get("manager_user_id") is not None:
            await _check_users(self.session, account_id, "managerUserId", [values["manager_user_id"]])
        if values.get("member_ids"):
            await _check_users(self.session, account_id, "memberIds", values["member_ids"])

    async def _store_extra(self, row: Any, extra: dict[str, Any]) -> bool:
        """Replace the team's members; whether they changed."""
        if extra.get("member_ids") is None:
            return False
        members = TeamMemberRepository(self.session)
        wanted = sorted(set(extra["member_ids"]))
        if (await members.members([row.id]))[row.id] == wanted:
            return False
        await members.replace(row.id, wanted)
        return True
