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


def _conditions(execution: Execution) -> list[dict[str, Any]]:
    return [{"field": r.field, "operator": r.operator, "value": r.value,  # not dataclasses.asdict: it deep-copies
             "actual_value": r.actual_value, "matched": r.matched} for r in execution.condition_results]


def _ms(value: float) -> float:
    """An execution's time in ms to the microsecond (a short number in the JSON)."""
    return round(value, 3)


def execution_rows(account_id: int, ticket_id: int, executions: list[Execution]) -> list[dict[str, Any]]:
    """Rows of ``automation_executions``: the evaluations that got past their conditions."""
    return [{
        "account_id": account_id, "rule_id": e.rule_id, "ticket_id": ticket_id, "trigger": e.trigger,
        "status": e.status, "conditions_matched": e.conditions_matched, "condition_results": _conditions(e),
        "actions_performed": e.actions_performed, "before_values": e.before, "after_values": e.after,
        "error_message": e.error_message, "caused_by": e.caused_by, "depth": e.depth,
        "executed_at": e.executed_at.isoformat(), "execution_time_ms": _ms(e.execution_time_ms),
    } for e in executions if e.status != "skipped"]


def skipped_groups(executions: list[Execution]) -> list[list[dict[str, Any]]]:
    """The skipped evaluations of a write as ``automation_skips`` rows (their ``skipped`` arrays):
    one row, unless a rule was skipped more than once in the write (a cascade reaching it again):
    its n-th skip then goes into the n-th row, so a row holds each rule at most once and each
    evaluation is listed with an id of its own (the row's)."""
    groups: list[list[dict[str, Any]]] = []
    seen: dict[int, int] = {}
    for e in executions:
        if e.status != "skipped":
            continue
        occurrence = seen.get(e.rule_id, 0)
        seen[e.rule_id] = occurrence + 1
        if occurrence == len(groups):
            groups.append([])
        groups[occurrence].append({
            "rule_id": e.rule_id, "trigger": e.trigger, "condition_results": _conditions(e), "caused_by": e.caused_by,
            "depth": e.depth, "execution_time_ms": _ms(e.execution_time_ms)})
    return groups


_EXECUTION_COLUMNS = ("account_id, rule_id, ticket_id, trigger, status, conditions_matched, condition_results, "
                      "actions_performed, before_values, after_values, error_message, caused_by, depth, executed_at, "
                      "execution_time_ms")
# A write's evaluations as two data-modifying CTEs (parameters: :runs, :skipped, :skipped_rule_ids,
# :more_skipped, :account_id, :ticket_id, :executed_at; see :func:`execution_parameters`) that the
# write's last statement carries (``TicketStore.record_outcome``), so the audit trail costs no
# statement of its own: those that ran (rarely more than a few) as rows from a JSON array, those
# skipped (often most of the rules) as the ``automation_skips`` rows of :func:`skipped_groups`: the
# first (nearly always the only one) from its JSON and its rules' ids as an array, the others (a
# rule skipped again in a cascade) from one JSON array of groups, in order, their ids read from it.
EXECUTIONS_CTES = (
    f"audit_runs AS (INSERT INTO automation_executions ({_EXECUTION_COLUMNS}) SELECT {_EXECUTION_COLUMNS} "
    "FROM jsonb_populate_recordset(NULL::automation_executions, CAST(:runs AS jsonb))), "
    "audit_skips AS (INSERT INTO automation_skips (account_id, ticket_id, executed_at, rule_ids, skipped) "
    "(SELECT :account_id, :ticket_id, CAST(:executed_at AS timestamptz), CAST(:skipped_rule_ids AS bigint[]), "
    "CAST(:skipped AS json) WHERE cardinality(CAST(:skipped_rule_ids AS bigint[])) > 0) "
    "UNION ALL (SELECT :account_id, :ticket_id, CAST(:executed_at AS timestamptz), "
    "ARRAY(SELECT CAST(e->>'rule_id' AS bigint) FROM json_array_elements(g.skipped) AS e), g.skipped "
    "FROM json_array_elements(CAST(:more_skipped AS json)) WITH ORDINALITY AS g(skipped, n) ORDER BY g.n))")


def execution_parameters(account_id: int, ticket_id: int, executions: list[Execution]) -> dict[str, Any]:
    """The parameters of :data:`EXECUTIONS_CTES` for a write's evaluations (not empty)."""
    first, *more = skipped_groups(executions) or [[]]
    return {
        "runs": json.dumps(execution_rows(account_id, ticket_id, executions), separators=(",", ":")),
        "skipped": json.dumps(first, separators=(",", ":")), "skipped_rule_ids": [e["rule_id"] for e in first],
        "more_skipped": json.dumps(more, separators=(",", ":")) if more else "[]",
        "account_id": account_id, "ticket_id": ticket_id, "executed_at": executions[0].executed_at,
    }

# One rule's evaluations, both kinds, as rows of one shape (``{filters}``: static SQL below).
_RULE_EVALUATIONS = """
SELECT id, rule_id, ticket_id, trigger, status, conditions_matched, condition_results, actions_performed,
       before_values, after_values, error_message, caused_by, depth, executed_at, execution_time_ms
  FROM automation_executions
 WHERE account_id = :account_id AND rule_id = :rule_id {run_filters}
UNION ALL
SELECT s.id, x.rule_id, s.ticket_id, x.trigger, 'skipped', false, x.condition_results, '[]'::jsonb, '{{}}'::jsonb,
       '{{}}'::jsonb, NULL, x.caused_by, x.depth, s.executed_at, x.execution_time_ms
  FROM automation_skips s
 CROSS JOIN LATERAL json_to_recordset(s.skipped)
       AS x(rule_id bigint, trigger text, condition_results jsonb, caused_by jsonb, depth int, execution_time_ms float)
 WHERE s.account_id = :account_id AND s.rule_ids @> ARRAY[CAST(:rule_id AS bigint)] AND x.rule_id = :rule_id
       {skip_filters}
"""


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
                         page_size: int) -> tuple[list[dict[str, Any]], int]:
        """One rule's evaluations (skipped ones included), newest first, as row mappings."""
        params: dict[str, Any] = {"account_id": account_id, "rule_id": rule_id, "limit": page_size,
                                  "offset": (page - 1) * page_size}
        runs, skips = [], []
        for name, value, run_sql, skip_sql in (
                ("ticket_id", ticket_id, "ticket_id = :ticket_id", "s.ticket_id = :ticket_id"),
                ("trigger", trigger, "trigger = :trigger", "x.trigger = :trigger"),
                ("date_from", date_from, "executed_at >= :date_from", "s.executed_at >= :date_from"),
                ("date_to", date_to, "executed_at <= :date_to", "s.executed_at <= :date_to")):
            if value is not None:
                params[name] = value
                runs.append(run_sql)
                skips.append(skip_sql)
        if status is not None:
            params["status"] = status
            runs.append("status = :status")
            skips.append("'skipped' = :status")
        union = _RULE_EVALUATIONS.format(run_filters="".join(f" AND {f}" for f in runs),
                                         skip_filters="".join(f" AND {f}" for f in skips))
        total = await self.session.scalar(text(f"SELECT count(*) FROM ({union}) AS evaluations"), params)
        rows = await self.session.execute(text(f"SELECT * FROM ({union}) AS evaluations "
                                               "ORDER BY executed_at DESC, id DESC LIMIT :limit OFFSET :offset"), params)
        return [dict(row._mapping) for row in rows], int(total or 0)

    async def latest_comment(self, account_id: int, ticket_id: int) -> TicketComment | None:
        """The ticket's newest comment (a dry run of a ``comment_added`` rule reads it)."""
        return await self.session.scalar(select(TicketComment).where(
            TicketComment.account_id == account_id, TicketComment.ticket_id == ticket_id)
            .order_by(TicketComment.id.desc()).limit(1))
