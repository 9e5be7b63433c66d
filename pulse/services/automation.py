"""Automation rules, the API's side: CRUD with statistics, dry runs, and the audit trail.

Every change to a rule bumps the account's rules generation in its own transaction (the engine
caches an account's rules per generation, so the next write reads the new rules) and then starts
the fan-out, so open tickets re-compute their agendas (``time_in_status`` rules created, edited
or disabled later apply to them too). A dry run evaluates with the same pure code as the engine
(``pulse.domain.automation_eval``) and writes nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from pulse.db import SessionFactory
from pulse.domain import pipeline, records
from pulse.domain.agenda import TicketRules
from pulse.domain.automation import AutomationRule as RuleRecord
from pulse.domain.automation import Trigger, parse_rule
from pulse.domain.automation_eval import ConditionResult, Context, Execution, trigger_event
from pulse.domain.changes import Actor
from pulse.domain.errors import NotFound, ValidationFailed, VersionConflict, field_error
from pulse.models import AutomationRule
from pulse.repositories.automation import AutomationRuleRepository, rule_record
from pulse.repositories.escalations import EscalationRuleRepository
from pulse.repositories.idempotency import IdempotencyRepository
from pulse.repositories.rotations import RotationRepository
from pulse.repositories.rules import RulesRepository
from pulse.repositories.ticket_store import TicketStore
from pulse.services.automation_hook import AutomationHook
from pulse.services.ticket_engine import stored_policy_for
from pulse.services.rules import RulesService

log = logging.getLogger("pulse.automation")
STATUSES = ("success", "failed", "skipped", "loop_stopped")
IDEMPOTENCY_SCOPE = "automation_rules.create"


def render_rule(row: AutomationRule) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "enabled": row.enabled,
            **rule_record(row).to_api(), "version": row.version, "createdAt": row.created_at.isoformat(),
            "updatedAt": row.updated_at.isoformat()}


def render_execution(execution: Execution, *, ticket_id: int | None = None, row_id: int | None = None) -> dict[str, Any]:
    body = {
        "ruleId": execution.rule_id, "ruleName": execution.rule_name, "ticketId": ticket_id,
        "trigger": execution.trigger, "executionStatus": execution.status, "success": execution.status == "success",
        "conditionsMatched": execution.conditions_matched,
        "conditionResults": [{"field": r.field, "operator": r.operator, "value": r.value,
                              "actualValue": r.actual_value, "matched": r.matched} for r in execution.condition_results],
        "actionsPerformed": execution.actions_performed, "before": execution.before, "after": execution.after,
        "errorMessage": execution.error_message, "executedAt": execution.executed_at.isoformat(),
        "executionTime": round(execution.execution_time_ms, 3), "causedBy": execution.caused_by,
        "depth": execution.depth,
    }
    return body if row_id is None else {"id": row_id, **body}


def _stored_execution(row: dict[str, Any]) -> dict[str, Any]:
    execution = Execution(rule_id=row["rule_id"], trigger=row["trigger"], status=row["status"],
                          conditions_matched=row["conditions_matched"],
                          condition_results=[ConditionResult(**r) for r in row["condition_results"]],
                          actions_performed=row["actions_performed"], before=row["before_values"],
                          after=row["after_values"], error_message=row["error_message"], caused_by=row["caused_by"],
                          depth=row["depth"], executed_at=row["executed_at"],
                          execution_time_ms=row["execution_time_ms"])
    body = render_execution(execution, ticket_id=row["ticket_id"], row_id=row["id"])
    body.pop("ruleName")
    return body


class AutomationRuleService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.rules = RulesService(sessions, temporal, task_queue)

    @staticmethod
    def parse(values: dict[str, Any], rule_id: int = 0) -> RuleRecord:
        return parse_rule(values.get("trigger"), values.get("trigger_config"), values.get("conditions") or [],
                          values.get("conditions_match", "all"), values.get("actions") or [],
                          values.get("execution_order", 0), rule_id=rule_id, name=values.get("name") or "",
                          enabled=values.get("enabled", True))

    async def _validated(self, session: AsyncSession, account_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """The row's values; a 422 naming the part at fault (also a user, team or rotation that is
        not the account's)."""
        rule = self.parse(values)
        people = EscalationRuleRepository(session)
        rotations = RotationRepository(session)
        for path, kind, record_id in rule.references():
            found = (await people.user_in_account(account_id, record_id) if kind == "user"
                     else await people.team_in_account(account_id, record_id) if kind == "team"
                     else await rotations.get(account_id, record_id) is not None)
            if not found:
                raise field_error(path, f"no {kind} with id {record_id} in this account")
        api = rule.to_api()
        return {"name": values["name"], "description": values.get("description"), "enabled": values.get("enabled", True),
                "trigger": api["trigger"], "trigger_config": api["triggerConfig"], "conditions": api["conditions"],
                "conditions_match": api["conditionsMatch"], "actions": api["actions"],
                "execution_order": api["executionOrder"]}

    async def _fan_out(self, account_id: int, generation: int) -> None:
        try:
            await self.rules.start_fanout(account_id, generation)
        except Exception:  # noqa: BLE001 - Temporal unreachable: the change stands, tickets catch up at their next write
            log.exception("could not start the fan-out of rules generation %s of account %s", generation, account_id)

    async def create(self, account_id: int, values: dict[str, Any], *, idempotency_key: str | None = None,
                     request_hash: str = "") -> tuple[dict[str, Any], bool]:
        """The rule created (True), or the one an earlier request with this ``Idempotency-Key``
        created within 24 hours (False: nothing new, no fan-out)."""
        async with self.sessions() as session, session.begin():
            repository = AutomationRuleRepository(session)
            keys = IdempotencyRepository(session)
            if idempotency_key is not None:
                earlier = await keys.claim(account_id, IDEMPOTENCY_SCOPE, idempotency_key, request_hash)
                row = await repository.get(account_id, earlier) if earlier is not None else None
                if row is not None:
                    return render_rule(row), False
            stored = await self._validated(session, account_id, values)
            row = await repository.add(AutomationRule(account_id=account_id, **stored))
            if idempotency_key is not None:
                await keys.remember(account_id, IDEMPOTENCY_SCOPE, idempotency_key, row.id)
            body = render_rule(row)
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)
        return body, True

    async def replace(self, account_id: int, rule_id: int, values: dict[str, Any],
                      expected_version: int | None) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            repository = AutomationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"automation rule {rule_id} not found")
            if expected_version is not None and expected_version != row.version:
                raise VersionConflict(f"automation rule is at version {row.version}, not {expected_version}",
                                      details=[{"field": "version", "message": f"current version is {row.version}"}])
            for name, value in (await self._validated(session, account_id, values)).items():
                setattr(row, name, value)
            row.version += 1
            row.updated_at = datetime.now(timezone.utc)
            body = render_rule(await repository.flush(row))
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)
        return body

    async def delete(self, account_id: int, rule_id: int) -> None:
        async with self.sessions() as session, session.begin():
            repository = AutomationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"automation rule {rule_id} not found")
            await repository.delete(row)
            generation = await RulesRepository(session).bump_generation(account_id)
        await self._fan_out(account_id, generation)

    async def get(self, account_id: int, rule_id: int) -> dict[str, Any]:
        async with self.sessions() as session:
            repository = AutomationRuleRepository(session)
            row = await repository.get(account_id, rule_id)
            if row is None:
                raise NotFound(f"automation rule {rule_id} not found")
            body = render_rule(row)
            stats = await repository.statistics(rule_id)
        body["statistics"] = {
            "totalExecutions": stats["total"], "successfulExecutions": stats["succeeded"],
            "failedExecutions": stats["failed"],
            "lastExecutedAt": stats["last"].isoformat() if stats["last"] else None,
            "averageExecutionTime": round(stats["average_ms"], 3),
        }
        return body

    async def list(self, account_id: int, *, enabled: bool | None, trigger: str | None, search: str | None,
                   page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        if trigger is not None and trigger not in {t.value for t in Trigger}:
            raise field_error("trigger", f"one of {', '.join(t.value for t in Trigger)}")
        async with self.sessions() as session:
            rows, total = await AutomationRuleRepository(session).list(
                account_id, enabled=enabled, trigger=trigger, search=search, page=page, page_size=page_size)
            return [render_rule(row) for row in rows], total

    async def executions(self, account_id: int, rule_id: int, *, ticket_id: int | None, trigger: str | None,
                         status: str | None, date_from: datetime | None, date_to: datetime | None, page: int,
                         page_size: int) -> tuple[list[dict[str, Any]], int]:
        if status is not None and status not in STATUSES:
            raise field_error("executionStatus", f"one of {', '.join(STATUSES)}")
        if trigger is not None and trigger not in {t.value for t in Trigger}:
            raise field_error("trigger", f"one of {', '.join(t.value for t in Trigger)}")
        async with self.sessions() as session:
            repository = AutomationRuleRepository(session)
            if await repository.get(account_id, rule_id) is None:
                raise NotFound(f"automation rule {rule_id} not found")
            rows, total = await repository.executions(account_id, rule_id, ticket_id=ticket_id, trigger=trigger,
                                                      status=status, date_from=date_from, date_to=date_to,
                                                      page=page, page_size=page_size)
        return [_stored_execution(row) for row in rows], total

    # -- dry runs ----------------------------------------------------------------------------------

    async def test_saved(self, account_id: int, rule_id: int, ticket_id: int, trigger: str | None) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await AutomationRuleRepository(session).get(account_id, rule_id)
            if row is None:
                raise NotFound(f"automation rule {rule_id} not found")
            rule = rule_record(row).model_copy(update={"enabled": True})
            return await self._dry_run(session, account_id, rule, ticket_id, trigger)

    async def test_unsaved(self, account_id: int, values: dict[str, Any], ticket_id: int,
                           trigger: str | None) -> dict[str, Any]:
        async with self.sessions() as session:
            try:
                await self._validated(session, account_id, {"name": "", **values})
            except ValidationFailed as error:  # name the part inside the body's "rule"
                raise ValidationFailed(error.message, details=[
                    {**d, "field": f"rule.{d['field']}"} for d in error.details]) from None
            rule = self.parse({**values, "enabled": True})
            return await self._dry_run(session, account_id, rule, ticket_id, trigger)

    async def _dry_run(self, session: AsyncSession, account_id: int, rule: RuleRecord, ticket_id: int,
                       trigger: str | None) -> dict[str, Any]:
        """What the rule would do to the ticket as it is, with the cascade the account's enabled
        rules would make of it: the engine's pipeline (rules, then the SLA clock, then the rules
        its thresholds trigger) on the stored ticket, read without a lock, and nothing written
        (the rotations' state is read, not advanced)."""
        try:
            fired_by = Trigger(trigger) if trigger is not None else rule.trigger
        except ValueError:
            raise field_error("trigger", f"one of {', '.join(t.value for t in Trigger)}") from None
        stored = await TicketStore(session).lock_for_write(account_id, ticket_id, "", lock=False)
        ticket = stored.ticket
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        others = [r for r in await AutomationRuleRepository(session).enabled(account_id) if r.id != rule.id]
        comment = None
        if fired_by == Trigger.COMMENT_ADDED:
            latest = await AutomationRuleRepository(session).latest_comment(account_id, ticket_id)
            comment = None if latest is None else records.Comment.model_validate(latest)
        now = datetime.now(timezone.utc)
        event = trigger_event(fired_by, ticket, rule.id, now)
        hook = AutomationHook(session, account_id, lock=False)
        context = Context(comment=comment, only_rule=rule.id)
        rules = TicketRules(automations=[rule, *others])

        def run() -> pipeline.PipelineResult:
            return pipeline.run(ticket, lambda before: (before, [event]), actor=Actor.system(), now=now,  # type: ignore[arg-type,return-value]
                                ledger=stored.ledger, rules=rules, context=context,
                                policy_for=stored_policy_for(stored), timer=time.perf_counter)

        result = run()
        while result.rotations_needed:
            context = context.model_copy(update={"rotations": await hook.rotations(result.rotations_needed)})
            result = run()
        first = next((e for e in result.executions if e.rule_id == rule.id and e.depth == 1), None)
        matched = first is not None and first.conditions_matched
        return {
            "wouldExecute": first is not None and first.status == "success",
            "trigger": fired_by.value,
            "triggered": first is not None,
            "conditionsMatched": matched,
            "conditionResults": render_execution(first)["conditionResults"] if first else [],
            "actionsToPerform": rule.to_api()["actions"] if matched else [],
            "errorMessage": first.error_message if first else None,
            "resultingTicket": result.ticket.to_api(),
            "cascade": [render_execution(e, ticket_id=ticket.id) for e in result.executions if e is not first],
        }
