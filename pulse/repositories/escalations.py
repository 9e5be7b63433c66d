"""Escalation rules, the tickets' escalation history, and who an escalation reaches."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.escalation import EscalationRule as RuleRecord
from pulse.models import EscalationRule, Team, TeamMember, TicketEscalation, User


def rule_record(row: EscalationRule) -> RuleRecord:
    return RuleRecord.model_validate({
        "id": row.id, "name": row.name, "enabled": row.enabled, "priority": row.priority, "level": row.level,
        "conditions": row.conditions or [], "when": row.when, "escalate_to": row.escalate_to,
        "escalate_to_user_id": row.escalate_to_user_id, "escalate_to_team_id": row.escalate_to_team_id,
        "escalate_to_rotation_id": row.escalate_to_rotation_id, "reassign": row.reassign,
        "notification_channels": list(row.notification_channels or []),
        "business_hours_only": row.business_hours_only, "add_internal_note": row.add_internal_note,
        "internal_note_template": row.internal_note_template, "version": row.version,
    })


class EscalationRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enabled(self, account_id: int) -> list[RuleRecord]:
        rows = await self.session.scalars(select(EscalationRule).where(
            EscalationRule.account_id == account_id, EscalationRule.enabled.is_(True))
            .order_by(EscalationRule.level, EscalationRule.id))
        return [rule_record(row) for row in rows]

    async def list(self, account_id: int, *, enabled: bool | None, priority: str | None, search: str | None,
                   page: int, page_size: int) -> tuple[Sequence[EscalationRule], int]:
        statement = select(EscalationRule).where(EscalationRule.account_id == account_id)
        if enabled is not None:
            statement = statement.where(EscalationRule.enabled.is_(enabled))
        if priority is not None:
            statement = statement.where(EscalationRule.priority == priority)
        if search:
            escaped = search.replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            statement = statement.where(or_(EscalationRule.name.ilike(pattern), EscalationRule.description.ilike(pattern)))
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(statement.order_by(EscalationRule.priority, EscalationRule.level,
                                                             EscalationRule.id)
                                          .limit(page_size).offset((page - 1) * page_size))
        return list(rows), int(total or 0)

    async def get(self, account_id: int, rule_id: int) -> EscalationRule | None:
        return await self.session.scalar(select(EscalationRule).where(
            EscalationRule.account_id == account_id, EscalationRule.id == rule_id))

    async def add(self, row: EscalationRule) -> EscalationRule:
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def delete(self, row: EscalationRule) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def flush(self, row: EscalationRule) -> EscalationRule:
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def statistics(self, rule_id: int) -> dict[str, Any]:
        row = (await self.session.execute(select(
            func.count(TicketEscalation.id), func.max(TicketEscalation.escalated_at),
            func.avg(func.extract("epoch", TicketEscalation.escalated_at - TicketEscalation.threshold_at)),
        ).where(TicketEscalation.rule_id == rule_id))).one()
        return {"total": int(row[0] or 0), "last": row[1], "average_delay_seconds": float(row[2] or 0)}

    # -- history ---------------------------------------------------------------------------------

    async def record(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(TicketEscalation).values(**values))

    async def escalated_in_cycle(self, ticket_id: int, rule_id: int, cycle: int) -> bool:
        return await self.session.scalar(select(TicketEscalation.id).where(
            TicketEscalation.ticket_id == ticket_id, TicketEscalation.rule_id == rule_id,
            TicketEscalation.cycle == cycle).limit(1)) is not None

    async def history(self, ticket_id: int) -> list[TicketEscalation]:
        rows = await self.session.scalars(select(TicketEscalation).where(TicketEscalation.ticket_id == ticket_id)
                                          .order_by(TicketEscalation.escalated_at, TicketEscalation.id))
        return list(rows)

    # -- targets ---------------------------------------------------------------------------------

    async def team_manager(self, account_id: int, team_id: int) -> int | None:
        return await self.session.scalar(select(Team.manager_user_id).where(
            Team.account_id == account_id, Team.id == team_id))

    async def team_members(self, account_id: int, team_id: int) -> list[int]:
        rows = await self.session.scalars(select(TeamMember.user_id).join(Team, Team.id == TeamMember.team_id).where(
            Team.account_id == account_id, Team.id == team_id).order_by(TeamMember.user_id))
        return list(rows)

    async def admins(self, account_id: int) -> list[int]:
        rows = await self.session.scalars(select(User.id).where(
            User.account_id == account_id, User.role == "admin", User.is_active.is_(True)).order_by(User.id))
        return list(rows)

    async def user_in_account(self, account_id: int, user_id: int) -> bool:
        return await self.session.scalar(select(User.id).where(
            User.account_id == account_id, User.id == user_id)) is not None

    async def team_in_account(self, account_id: int, team_id: int) -> bool:
        return await self.session.scalar(select(Team.id).where(
            Team.account_id == account_id, Team.id == team_id)) is not None


def escalation_row_values(account_id: int, ticket_id: int, rule: RuleRecord, cycle: int, threshold_at: datetime,
                          escalated_at: datetime, user_ids: list[int], team_id: int | None,
                          reassigned: bool) -> dict[str, Any]:
    return {"account_id": account_id, "ticket_id": ticket_id, "rule_id": rule.id, "level": rule.level,
            "cycle": cycle, "threshold_at": threshold_at, "escalated_at": escalated_at,
            "escalate_to": rule.escalate_to.value, "target_user_ids": user_ids, "target_team_id": team_id,
            "reassigned": reassigned, "channels": list(rule.notification_channels)}
