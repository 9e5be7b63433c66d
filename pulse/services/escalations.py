"""Escalation rules (the API's side: CRUD, statistics, a ticket's history) and who an escalation
reaches (the engine's side, resolved when it fires, inside the escalation's transaction)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.escalation import (
    CHANNELS,
    EscalateTo,
    EscalationRule as RuleRecord,
    EscalationWhen,
    ResolvedTarget,
    unknown_template_variables,
)
from pulse.domain.conditions import Condition
from pulse.domain.errors import NotFound, ValidationFailed, VersionConflict
from pulse.domain.tickets import Priority
from pulse.models import EscalationRule
from pulse.repositories.escalations import EscalationRuleRepository, rule_record
from pulse.repositories.rotations import RotationRepository
from pulse.repositories.rules import RulesRepository
from pulse.services.rules import RulesService


log = logging.getLogger("pulse.escalation")


class EscalationTargets:
    """Targets as the contract says: ``manager`` → the assigned team's manager (no team or no
    manager → the account's admins); ``team`` → the team's members; ``specific_user``; ``rotation``
    → the rotation's next member (the pick advances it, in the escalation's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.rules = EscalationRuleRepository(session)
        self.rotations = RotationRepository(session)

    async def resolve(self, account_id: int, ticket: records.Ticket, rule: RuleRecord) -> ResolvedTarget:
        if rule.escalate_to == EscalateTo.MANAGER:
            manager = None
            if ticket.assigned_to_team_id is not None:
                manager = await self.rules.team_manager(account_id, ticket.assigned_to_team_id)
            if manager is not None:
                return ResolvedTarget(user_ids=[manager], description=f"manager (user {manager})")
            admins = await self.rules.admins(account_id)
            return ResolvedTarget(user_ids=admins, description="the account's admins (no team manager)")
        if rule.escalate_to == EscalateTo.TEAM and rule.escalate_to_team_id is not None:
            members = await self.rules.team_members(account_id, rule.escalate_to_team_id)
            return ResolvedTarget(user_ids=members, team_id=rule.escalate_to_team_id,
                                  description=f"team {rule.escalate_to_team_id}")
        if rule.escalate_to == EscalateTo.SPECIFIC_USER and rule.escalate_to_user_id is not None:
            return ResolvedTarget(user_ids=[rule.escalate_to_user_id], description=f"user {rule.escalate_to_user_id}")
        if rule.escalate_to == EscalateTo.ROTATION and rule.escalate_to_rotation_id is not None:
            picked = await self.rotations.pick_next(account_id, rule.escalate_to_rotation_id)
            return ResolvedTarget(user_ids=[picked] if picked is not None else [],
                                  description=f"rotation {rule.escalate_to_rotation_id}"
                                              + (f" (user {picked})" if picked is not None else " (nobody available)"))
        return ResolvedTarget(description="nobody (the rule's target is missing)")


_API_NAMES = {
    "escalate_to": "escalateTo", "escalate_to_user_id": "escalateToUserId", "escalate_to_team_id": "escalateToTeamId",
    "escalate_to_rotation_id": "escalateToRotationId", "notification_channels": "notificationChannels",
    "business_hours_only": "businessHoursOnly", "add_internal_note": "addInternalNote",
    "internal_note_template": "internalNoteTemplate",
}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


class EscalationRuleService:
    """CRUD of an account's escalation rules. Every change bumps the account's rules generation in
    its own transaction (so no write can cache the new rules under the old generation) and then
    starts the fan-out, so rules created, edited, disabled or deleted apply to open tickets too."""

    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.rules = RulesService(sessions, temporal, task_queue)

    async def _validated(self, session: AsyncSession, account_id: int, values: dict[str, Any]) -> dict[str, Any]:
        try:
            when = EscalationWhen.model_validate(values["when"])
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem.get("loc", ()))
            raise _invalid("when" + (f".{where}" if where else ""),
                           str(problem.get("msg", "invalid")).removeprefix("Value error, ")) from None
        conditions = []
        for index, condition in enumerate(values.get("conditions") or []):
            try:
                conditions.append(Condition.model_validate(condition))
            except ValidationError as error:
                problem = error.errors()[0]
                where = ".".join(str(p) for p in problem.get("loc", ())) or "field"
                raise _invalid(f"conditions[{index}].{where}",
                               str(problem.get("msg", "invalid")).removeprefix("Value error, ")) from None
        for index, channel in enumerate(values.get("notification_channels") or []):
            if channel not in CHANNELS:
                raise _invalid(f"notificationChannels[{index}]", f"one of {', '.join(CHANNELS)}")
        target = EscalateTo(values["escalate_to"])
        required = {EscalateTo.TEAM: "escalate_to_team_id", EscalateTo.SPECIFIC_USER: "escalate_to_user_id",
                    EscalateTo.ROTATION: "escalate_to_rotation_id"}.get(target)
        if required and values.get(required) is None:
            raise _invalid(_API_NAMES[required], f"required when escalateTo is {target.value}")
        repository = EscalationRuleRepository(session)
        if values.get("escalate_to_user_id") is not None and not await repository.user_in_account(
                account_id, values["escalate_to_user_id"]):
            raise _invalid("escalateToUserId", f"no user with id {values['escalate_to_user_id']} in this account")
        if values.get("escalate_to_team_id") is not None and not await repository.team_in_account(
                account_id, values["escalate_to_team_id"]):
            raise _invalid("escalateToTeamId", f"no team with id {values['escalate_to_team_id']} in this account")
        if values.get("escalate_to_rotation_id") is not None and not (await RotationRepository(session).get(
                account_id, values["escalate_to_rotation_id"])):
            raise _invalid("escalateToRotationId",
                           f"no rotation with id {values['escalate_to_rotation_id']} in this account")
        unknown = unknown_template_variables(values.get("internal_note_template") or "")
        if unknown:
            raise _invalid("internalNoteTemplate", f"unknown variable(s): {', '.join(unknown)}")
        return {**values, "when": when.model_dump(mode="json", exclude_none=True),
                "conditions": [c.model_dump(mode="json") for c in conditions],
                "priority": values.get("priority") or "all"}

    async def _fan_out(self, account_id: int, generation: int) -> None:
        """Tell the open tickets (a failure to start is logged: every ticket's next write reads
        the new generation anyway, and the rule itself is saved)."""
        try:
            await self.rules.start_fanout(account_id, generation)
        except Exception:  # noqa: BLE001 - Temporal unreachable: the change stands
            log.exception("could not start the fan-out of rules generation %s of account %s", generation, account_id)

    async def create(self, account_id: int, values: dict[str, Any]) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            stored = await self._validated(session, account_id, values)
            row = await EscalationRuleRepository(session).add(EscalationRule(account_id=account_id, **stored))
            body = await self._render(session, row)
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)
        return body

    async def replace(self, account_id: int, rule_id: int, values: dict[str, Any],
                      expected_version: int | None) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            repository = EscalationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"escalation rule {rule_id} not found")
            if expected_version is not None and expected_version != row.version:
                raise VersionConflict(f"escalation rule is at version {row.version}, not {expected_version}",
                                      details=[{"field": "version", "message": f"current version is {row.version}"}])
            stored = await self._validated(session, account_id, values)
            for name, value in stored.items():
                setattr(row, name, value)
            row.version += 1
            row.updated_at = datetime.now(timezone.utc)
            body = await self._render(session, await repository.flush(row))
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)
        return body

    async def delete(self, account_id: int, rule_id: int) -> None:
        async with self.sessions() as session, session.begin():
            repository = EscalationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"escalation rule {rule_id} not found")
            await repository.delete(row)
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)

    async def get(self, account_id: int, rule_id: int) -> dict[str, Any]:
        async with self.sessions() as session:
            repository = EscalationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"escalation rule {rule_id} not found")
            body = await self._render(session, row)
            stats = await repository.statistics(rule_id)
        body["statistics"] = {
            "totalEscalations": stats["total"],
            "lastEscalatedAt": stats["last"].isoformat() if stats["last"] else None,
            "averageEscalationTime": round(stats["average_delay_seconds"], 3),
        }
        return body

    async def list(self, account_id: int, *, enabled: bool | None, priority: str | None, search: str | None,
                   page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        if priority is not None and priority != "all" and priority not in {p.value for p in Priority}:
            raise _invalid("priority", "one of urgent, high, medium, low, all")
        async with self.sessions() as session:
            rows, total = await EscalationRuleRepository(session).list(
                account_id, enabled=enabled, priority=priority, search=search, page=page, page_size=page_size)
            return [await self._render(session, row) for row in rows], total

    async def history(self, account_id: int, ticket_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await EscalationRuleRepository(session).history(ticket_id)
        return [{"id": row.id, "ruleId": row.rule_id, "level": row.level, "thresholdAt": row.threshold_at.isoformat(),
                 "escalatedAt": row.escalated_at.isoformat(), "escalateTo": row.escalate_to,
                 "targetUserIds": list(row.target_user_ids), "targetTeamId": row.target_team_id,
                 "reassigned": row.reassigned, "channels": list(row.channels)}
                for row in rows if row.account_id == account_id]

    @staticmethod
    async def _render(session: AsyncSession, row: EscalationRule) -> dict[str, Any]:
        rule = rule_record(row)
        return {
            "id": row.id, "name": row.name, "description": row.description, "enabled": row.enabled,
            "priority": row.priority, "level": row.level, "conditions": [c.model_dump(mode="json") for c in rule.conditions],
            "when": rule.when.to_api(), "escalateTo": row.escalate_to, "escalateToUserId": row.escalate_to_user_id,
            "escalateToTeamId": row.escalate_to_team_id, "escalateToRotationId": row.escalate_to_rotation_id,
            "reassign": row.reassign, "notificationChannels": list(row.notification_channels or []),
            "businessHoursOnly": row.business_hours_only, "addInternalNote": row.add_internal_note,
            "internalNoteTemplate": row.internal_note_template, "version": row.version,
            "createdAt": row.created_at.isoformat(), "updatedAt": row.updated_at.isoformat(),
        }
