"""The Maverick integration's settings: the account's config (secrets write-only, encrypted at
rest, masked on read) and its category → ticket type mappings. Services use the request's
session; the request owns the transaction."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import Conflict, NotFound, ValidationFailed, VersionConflict, field_error
from pulse.domain.maverick import (
    DEFAULT_SETTINGS,
    SECRET_FIELDS,
    CategoryMappingRecord,
    MaverickConfigRecord,
    MaverickSettings,
    SyncRunRecord,
    check_status_mapping,
)
from pulse.domain.settings_records import write_only_secret
from pulse.models import Team, TicketCategory, TicketType, User
from pulse.models.maverick import MaverickCategoryMapping, MaverickConfig
from pulse.repositories.maverick import MaverickConfigRepository, MaverickMappingRepository
from pulse.repositories.maverick_sync import SyncRunRepository
from pulse.repositories.reference import ReferenceRepository
from pulse.secretbox import SecretBox


def _context(account_id: int, field: str) -> str:
    return f"maverick_configs:{account_id}:{field}"


def stored_settings(row: MaverickConfig | None, box: SecretBox) -> MaverickSettings:
    """The effective config of a stored row (secrets decrypted)."""
    if row is None:
        return DEFAULT_SETTINGS
    secrets = {field: box.open(sealed, _context(row.account_id, field)) if sealed else None
               for field, sealed in (("api_key", row.api_key_encrypted), ("webhook_secret", row.webhook_secret_encrypted))}
    return MaverickSettings.model_validate({
        "enabled": row.enabled, "api_url": row.api_url, **secrets, "auto_sync": row.auto_sync,
        "sync_interval_minutes": row.sync_interval_minutes, "sync_direction": row.sync_direction,
        "default_assignee_id": row.default_assignee_id, "default_team_id": row.default_team_id,
        "sync_internal_notes": row.sync_internal_notes, "status_mapping": row.status_mapping or {},
    })


class MaverickConfigService:
    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self.session = session
        self.box = box
        self.configs = MaverickConfigRepository(session)

    async def get(self, account_id: int) -> MaverickConfigRecord:
        row = await self.configs.get(account_id)
        return self._record(row, stored_settings(row, self.box))

    async def settings(self, account_id: int) -> MaverickSettings | None:
        """The account's config with its secrets, None when it has none."""
        row = await self.configs.get(account_id)
        return stored_settings(row, self.box) if row is not None else None

    async def put(self, account_id: int, sent: dict[str, Any], version: int | None) -> MaverickConfigRecord:
        """``sent``: the fields the body named (snake_case). A field left out keeps its value;
        ``null`` resets it to its default; a secret left out or sent back masked is kept."""
        row = await self.configs.get(account_id, for_update=True)
        current_version = row.version if row is not None else 0
        if version is not None and version != current_version:
            raise VersionConflict(f"the Maverick config is at version {current_version}, not {version}; "
                                  "GET it and try again")
        current = stored_settings(row, self.box)
        merged = current.model_dump()
        for field, value in sent.items():
            if field in SECRET_FIELDS:
                continue
            merged[field] = value if value is not None else getattr(DEFAULT_SETTINGS, field)
        for field in SECRET_FIELDS:
            merged[field] = write_only_secret(sent, field, current.secret(field))
        if sent.get("status_mapping") is not None:
            merged["status_mapping"] = check_status_mapping(sent["status_mapping"])
        settings = _validated(merged)
        await self._check_references(account_id, settings)
        values = {
            **settings.model_dump(exclude={"api_key", "webhook_secret", "status_mapping"}, mode="json"),
            "status_mapping": settings.status_mapping,
        }
        for field in SECRET_FIELDS:
            plain, column = settings.secret(field), f"{field}_encrypted"
            if plain is None:
                values[column] = None
            elif plain == current.secret(field) and row is not None:
                values[column] = getattr(row, column)  # unchanged: no need to seal it again
            else:
                values[column] = self.box.seal(plain, _context(account_id, field))
        row = await self.configs.save(account_id, values)
        return self._record(row, settings)

    async def _check_references(self, account_id: int, settings: MaverickSettings) -> None:
        if settings.default_assignee_id is not None and \
                await ReferenceRepository(self.session, User).get(account_id, settings.default_assignee_id) is None:
            raise field_error("defaultAssigneeId", f"no user with id {settings.default_assignee_id} in this account")
        if settings.default_team_id is not None and \
                await ReferenceRepository(self.session, Team).get(account_id, settings.default_team_id) is None:
            raise field_error("defaultTeamId", f"no team with id {settings.default_team_id} in this account")

    @staticmethod
    def _record(row: MaverickConfig | None, settings: MaverickSettings) -> MaverickConfigRecord:
        return MaverickConfigRecord.of(settings, row.version if row is not None else 0,
                                       row.updated_at if row is not None else None)


def _validated(merged: dict[str, Any]) -> MaverickSettings:
    """A 422 naming each bad field in camelCase; never echoing a value (secrets among them)."""
    try:
        return MaverickSettings.model_validate(merged)
    except ValidationError as error:
        details = []
        for problem in error.errors(include_input=False, include_url=False):
            field = ".".join(to_camel(str(part)) for part in problem["loc"]) or "body"
            details.append({"field": field, "message": str(problem["msg"]).removeprefix("Value error, ")})
        raise ValidationFailed("invalid Maverick config: " + "; ".join(f"{d['field']}: {d['message']}"
                                                                        for d in details[:5]),
                               details=details) from None


class MaverickMappingService:
    """One mapping per Maverick category; a category without one lands on the account's
    "Unmapped Maverick Tickets" type."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.mappings = MaverickMappingRepository(session)

    async def list(self, account_id: int) -> list[CategoryMappingRecord]:
        return [CategoryMappingRecord.model_validate(row) for row in await self.mappings.list(account_id)]

    async def get(self, account_id: int, mapping_id: int) -> CategoryMappingRecord:
        return CategoryMappingRecord.model_validate(await self._load(account_id, mapping_id))

    async def create(self, account_id: int, values: dict[str, Any]) -> CategoryMappingRecord:
        await self._check_references(account_id, values)
        row = await self.mappings.add(MaverickCategoryMapping(account_id=account_id, **values))
        await self.session.refresh(row)
        return CategoryMappingRecord.model_validate(row)

    async def replace(self, account_id: int, mapping_id: int, values: dict[str, Any],
                      version: int | None) -> CategoryMappingRecord:
        """PUT: every field is replaced (a field left out becomes null)."""
        row = await self._load(account_id, mapping_id)
        if version is not None and version != row.version:
            raise VersionConflict(f"mapping {mapping_id} is at version {row.version}, not {version}; reload and retry")
        await self._check_references(account_id, values)
        fields = ("maverick_category_id", "maverick_category_name", "pulse_ticket_type_id", "pulse_category_id")
        new = {field: values.get(field) for field in fields}
        if any(getattr(row, field) != value for field, value in new.items()):
            for field, value in new.items():
                setattr(row, field, value)
            row.version += 1
            row.updated_at = _now()
            await self.mappings.flush(row.maverick_category_id)
            await self.session.refresh(row)
        return CategoryMappingRecord.model_validate(row)

    async def delete(self, account_id: int, mapping_id: int) -> None:
        await self.mappings.delete(await self._load(account_id, mapping_id))

    async def resolve(self, account_id: int, maverick_category_id: int | None) -> tuple[int | None, int | None]:
        """(ticket type id, category id) for a Maverick ticket's category: its mapping's, else
        the "Unmapped Maverick Tickets" type (made on first use) and no category."""
        mapping = (await self.mappings.for_category(account_id, maverick_category_id)
                   if maverick_category_id is not None else None)
        if mapping is not None and mapping.pulse_ticket_type_id is not None:
            return mapping.pulse_ticket_type_id, mapping.pulse_category_id
        category_id = mapping.pulse_category_id if mapping is not None else None
        return await self.mappings.unmapped_type_id(account_id), category_id

    async def _load(self, account_id: int, mapping_id: int) -> MaverickCategoryMapping:
        row = await self.mappings.get(account_id, mapping_id)
        if row is None:
            raise NotFound(f"Maverick mapping {mapping_id} not found")
        return row

    async def _check_references(self, account_id: int, values: dict[str, Any]) -> None:
        for field, model, label in (("pulse_ticket_type_id", TicketType, "ticket type"),
                                    ("pulse_category_id", TicketCategory, "ticket category")):
            row_id = values.get(field)
            if row_id is not None and await ReferenceRepository(self.session, model).get(account_id, row_id) is None:
                raise field_error(to_camel(field), f"no {label} with id {row_id} in this account")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SyncRunService:
    def __init__(self, session: AsyncSession) -> None:
        self.runs = SyncRunRepository(session)

    async def start_manual(self, account_id: int, settings: MaverickSettings | None) -> SyncRunRecord:
        """A run row for "sync now"; 409 when the integration would pull nothing."""
        if settings is None or not settings.enabled:
            raise Conflict("the Maverick integration is not enabled; PUT its config with enabled: true first",
                           code="integration_disabled")
        if not settings.sync_direction.pulls:
            raise Conflict("syncDirection is outbound: a sync pulls nothing", code="integration_outbound_only")
        return SyncRunRecord.model_validate(await self.runs.start(account_id, settings.sync_direction.value, "manual"))

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[list[SyncRunRecord], int]:
        rows, total = await self.runs.list(account_id, page=page, page_size=page_size)
        return [SyncRunRecord.model_validate(row) for row in rows], total

    async def get(self, account_id: int, run_id: int) -> SyncRunRecord:
        row = await self.runs.get(account_id, run_id)
        if row is None:
            raise NotFound(f"sync run {run_id} not found")
        return SyncRunRecord.model_validate(row)
