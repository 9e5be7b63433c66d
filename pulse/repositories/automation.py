"""Automation rules and their executions (the audit trail)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.automation import AutomationRule as RuleRecord
from pulse.domain.automation_eval import Execution
from pulse.models import AutomationExecution, AutomationRule, TicketComment


def rule_record(row: AutomationRule) -> RuleRecord:
    return RuleRecord.model_validate({
        "id": row.id, "name": row.name, "enabled": row.enabled, "trigger": row.trigger,
        "trigger_config": row.trigger_config, "conditions": row.conditions or [],
        "conditions_match": row.conditions_match, "actions": row.actions or [],
        "execution_order": row.execution_order,
    })


def execution_rows(account_id: int, ticket_id: int, executions: list[Execution]) -> list[dict[str, Any]]:
    return [{
        "account_id": account_id, "rule_id": e.rule_id, "ticket_id": ticket_id, "trigger": e.trigger,
        "status": e.status, "conditions_matched": e.conditions_matched,
        "condition_results": [{"field": r.field, "operator": r.operator, "value": r.value,  # not asdict: it deep-copies
                               "actual_value": r.actual_value, "matched": r.matched} for r in e.condition_results],
        "actions_performed": e.actions_performed, "before_values": e.before, "after_values": e.after,
        "error_message": e.error_message, "caused_by": e.caused_by, "depth": e.depth,
        "executed_at": e.executed_at.isoformat(), "execution_time_ms": e.execution_time_ms,
    } for e in executions]


_EXECUTION_COLUMNS = ("account_id, rule_id, ticket_id, trigger, status, conditions_matched, condition_results, "
                      "actions_performed, before_values, after_values, error_message, caused_by, depth, executed_at, "
                      "execution_time_ms")
# A write's executions in one statement with one parameter (a JSON array): 50 skipped rules per
# PATCH are one short INSERT, not 750 bound values.
_INSERT_EXECUTIONS = text(
    f"INSERT INTO automation_executions ({_EXECUTION_COLUMNS}) SELECT {_EXECUTION_COLUMNS} "
    "FROM jsonb_populate_recordset(NULL::automation_executions, CAST(:rows AS jsonb))")


class AutomationRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enabled(self, account_id: int) -> list[RuleRecord]:
        """The account's enabled rules, in the order they run."""
        rows = await self.session.scalars(select(AutomationRule).where(
            AutomationRule.account_id == account_id, AutomationRule.enabled.is_(True))
            .order_by(AutomationRule.execution_order, AutomationRule.id))
        return [rule_record(row) for row in rows]

    async def list(self, account_id: int, *, enabled: bool | None, trigger: str | None, search: str | None,
                   page: int, page_size: int) -> tuple[Sequence[AutomationRule], int]:
        statement = select(AutomationRule).where(AutomationRule.account_id == account_id)
        if enabled is not None:
            statement = statement.where(AutomationRule.enabled.is_(enabled))
        if trigger is not None:
            statement = statement.where(AutomationRule.trigger == trigger)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            statement = statement.where(or_(AutomationRule.name.ilike(pattern),
                                            AutomationRule.description.ilike(pattern)))
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(statement.order_by(AutomationRule.execution_order, AutomationRule.id)
                                          .limit(page_size).offset((page - 1) * page_size))
        return list(rows), int(total or 0)

    async def get(self, account_id: int, rule_id: int) -> AutomationRule | None:
        return await self.session.scalar(select(AutomationRule).where(
            AutomationRule.account_id == account_id, AutomationRule.id == rule_id))

    async def add(self, row: AutomationRule) -> AutomationRule:
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def delete(self, row: AutomationRule) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def flush(self, row: AutomationRule) -> AutomationRule:
        await self.session.flush()
        await self.session.refresh(row)
        return row

    # -- executions ------------------------------------------------------------------------------

    async def add_executions(self, account_id: int, ticket_id: int, executions: list[Execution]) -> None:
        if executions:
            rows = json.dumps(execution_rows(account_id, ticket_id, executions), separators=(",", ":"))
            await self.session.execute(_INSERT_EXECUTIONS, {"rows": rows})

    async def statistics(self, rule_id: int) -> dict[str, Any]:
        """Executions are evaluations that got past the conditions (skipped ones are in the audit
        trail, not in these counts); ``loop_stopped`` counts as failed."""
        ran = AutomationExecution.status != "skipped"
        row = (await self.session.execute(select(
            func.count().filter(ran),
            func.count().filter(AutomationExecution.status == "success"),
            func.count().filter(AutomationExecution.status.in_(("failed", "loop_stopped"))),
            func.max(case((ran, AutomationExecution.executed_at))),
            func.avg(AutomationExecution.execution_time_ms).filter(ran),
        ).where(AutomationExecution.rule_id == rule_id))).one()
        return {"total": int(row[0] or 0), "succeeded": int(row[1] or 0), "failed": int(row[2] or 0),
                "last": row[3], "average_ms": float(row[4] or 0)}

    async def executions(self, account_id: int, rule_id: int, *, ticket_id: int | None, trigger: str | None,
                         status: str | None, date_from: datetime | None, date_to: datetime | None, page: int,
                         page_size: int) -> tuple[Sequence[AutomationExecution], int]:
        statement = select(AutomationExecution).where(AutomationExecution.account_id == account_id,
                                                      AutomationExecution.rule_id == rule_id)
        if ticket_id is not None:
            statement = statement.where(AutomationExecution.ticket_id == ticket_id)
        if trigger is not None:
            statement = statement.where(AutomationExecution.trigger == trigger)
        if status is not None:
            statement = statement.where(AutomationExecution.status == status)
        if date_from is not None:
            statement = statement.where(AutomationExecution.executed_at >= date_from)
        if date_to is not None:
            statement = statement.where(AutomationExecution.executed_at <= date_to)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(statement.order_by(AutomationExecution.executed_at.desc(),
                                                             AutomationExecution.id.desc())
                                          .limit(page_size).offset((page - 1) * page_size))
        return list(rows), int(total or 0)

    async def latest_comment(self, account_id: int, ticket_id: int) -> TicketComment | None:
        """The ticket's newest comment (a dry run of a ``comment_added`` rule reads it)."""
        return await self.session.scalar(select(TicketComment).where(
            TicketComment.account_id == account_id, TicketComment.ticket_id == ticket_id)
            .order_by(TicketComment.id.desc()).limit(1))
