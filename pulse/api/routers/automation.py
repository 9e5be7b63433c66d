"""/api/tickets/automation-rules (manageSettings to write and to dry-run, readSupport to read):
CRUD with statistics, dry runs (``/test``, ``/{id}/test``) and the audit trail (``/{id}/executions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from pulse.api.deps import (IdempotencyKeyHeader, IfMatchHeader, Manager, Reader, Sessions, Temporal, get_settings,
                            request_hash)
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import expected_version
from pulse.api.schemas import Body, Id
from pulse.config import Settings
from pulse.domain.automation import Trigger
from pulse.services.automation import STATUSES, AutomationRuleService

router = APIRouter(prefix="/api/tickets/automation-rules", tags=["automation"])


def rule_service(sessions: Sessions, temporal: Temporal,
                 settings: Annotated[Settings, Depends(get_settings)]) -> AutomationRuleService:
    return AutomationRuleService(sessions, temporal, settings.task_queue)


Rules = Annotated[AutomationRuleService, Depends(rule_service)]


# The schema names the triggers; the rule's parser checks them (and says which part is wrong).
_TRIGGER = {"enum": [trigger.value for trigger in Trigger]}
_STATUS = {"enum": list(STATUSES)}
TriggerQuery = Annotated[str | None, Query(json_schema_extra=_TRIGGER)]


class RuleParts(Body):
    """Trigger, conditions and actions are checked by ``pulse.domain.automation.parse_rule``, so
    a 422 names the exact part (``conditions[1].operator``)."""

    description: str | None = Field(default=None, max_length=5_000)
    enabled: bool = True
    # a trigger name, or {"type": "time_in_status", "status": ..., "afterMinutes": ...}
    trigger: Any = Field(default=None, json_schema_extra={"anyOf": [_TRIGGER, {"type": "object"}]})
    trigger_config: dict[str, Any] | None = None
    conditions: list[Any] = Field(default=[], max_length=50)
    conditions_match: str = Field(default="all", json_schema_extra={"enum": ["all", "any"]})
    actions: list[Any] = Field(default=[], max_length=50)
    execution_order: int = Field(default=0, ge=-1_000_000, le=1_000_000)


class AutomationRuleBody(RuleParts):
    name: str = Field(min_length=1, max_length=200)
    version: int | None = None


class UnsavedRule(RuleParts):
    name: str = Field(default="", max_length=200)


class TestSavedBody(Body):
    ticket_id: Id
    trigger: str | None = Field(default=None, max_length=50, json_schema_extra=_TRIGGER)


class TestUnsavedBody(Body):
    rule: UnsavedRule
    ticket_id: Id
    trigger: str | None = Field(default=None, max_length=50, json_schema_extra=_TRIGGER)


@router.get("")
async def list_rules(principal: Reader, rules: Rules, page: Annotated[Page, Depends(page_params)],
                     enabled: bool | None = None, trigger: TriggerQuery = None,
                     search: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    items, total = await rules.list(principal.account_id, enabled=enabled, trigger=trigger, search=search,
                                    page=page.page, page_size=page.page_size)
    return paginated(items, page, total)


@router.post("", status_code=201)
async def create_rule(body: AutomationRuleBody, principal: Manager, rules: Rules, response: Response,
                      idempotency_key: IdempotencyKeyHeader = None) -> dict:
    values = body.model_dump(exclude={"version"})
    created, new = await rules.create(principal.account_id, values, idempotency_key=idempotency_key,
                                      request_hash=request_hash(values))
    if not new:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/tickets/automation-rules/{created['id']}"
    return created


@router.post("/test")
async def test_unsaved_rule(body: TestUnsavedBody, principal: Manager, rules: Rules) -> dict:
    return await rules.test_unsaved(principal.account_id, body.rule.model_dump(), body.ticket_id, body.trigger)


@router.get("/{rule_id:int}")
async def get_rule(rule_id: Id, principal: Reader, rules: Rules) -> dict:
    return await rules.get(principal.account_id, rule_id)


@router.put("/{rule_id:int}")
async def replace_rule(rule_id: Id, body: AutomationRuleBody, principal: Manager, rules: Rules,
                       if_match: IfMatchHeader = None) -> dict:
    return await rules.replace(principal.account_id, rule_id, body.model_dump(exclude={"version"}),
                               expected_version(if_match, body.version))


@router.delete("/{rule_id:int}", status_code=204)
async def delete_rule(rule_id: Id, principal: Manager, rules: Rules) -> Response:
    await rules.delete(principal.account_id, rule_id)
    return Response(status_code=204)


@router.post("/{rule_id}/test")
async def test_saved_rule(rule_id: Id, body: TestSavedBody, principal: Manager, rules: Rules) -> dict:
    return await rules.test_saved(principal.account_id, rule_id, body.ticket_id, body.trigger)


@router.get("/{rule_id}/executions")
async def rule_executions(rule_id: Id, principal: Reader, rules: Rules, page: Annotated[Page, Depends(page_params)],
                          ticket_id: Annotated[Id | None, Query(alias="ticketId")] = None,
                          trigger: TriggerQuery = None,
                          execution_status: Annotated[str | None, Query(alias="executionStatus",
                                                                        json_schema_extra=_STATUS)] = None,
                          date_from: Annotated[datetime | None, Query(alias="dateFrom")] = None,
                          date_to: Annotated[datetime | None, Query(alias="dateTo")] = None) -> dict:
    items, total = await rules.executions(principal.account_id, rule_id, ticket_id=ticket_id, trigger=trigger,
                                          status=execution_status, date_from=date_from, date_to=date_to,
                                          page=page.page, page_size=page.page_size)
    return paginated(items, page, total)
