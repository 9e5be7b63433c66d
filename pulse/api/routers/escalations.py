"""/api/tickets/escalation-rules (manageSettings to write, readSupport to read) and a ticket's
escalation history (``/api/tickets/{id}/escalations``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field, model_validator

from pulse.api.deps import IfMatchHeader, Manager, Reader, Sessions, Temporal, get_settings
from pulse.api.pagination import Page, page_params, paginated
from pulse.api.routers.tickets import Tickets, expected_version
from pulse.api.schemas import Body, Id
from pulse.config import Settings
from pulse.services.escalations import EscalationRuleService

router = APIRouter(prefix="/api/tickets/escalation-rules", tags=["escalation"])
ticket_router = APIRouter(prefix="/api/tickets", tags=["escalation"])


def rule_service(sessions: Sessions, temporal: Temporal,
                 settings: Annotated[Settings, Depends(get_settings)]) -> EscalationRuleService:
    return EscalationRuleService(sessions, temporal, settings.task_queue)


Rules = Annotated[EscalationRuleService, Depends(rule_service)]


EscalationPriority = Literal["urgent", "high", "medium", "low", "all"]
_PRIORITY = {"enum": list(get_args(EscalationPriority))}


class EscalationRuleBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5_000)
    enabled: bool = True
    priority: EscalationPriority = "all"
    level: int = Field(default=1, ge=1, le=100)
    conditions: list[dict[str, Any]] = Field(default=[], max_length=50)
    when: dict[str, Any]
    escalate_to: Literal["manager", "team", "specific_user", "rotation"]
    escalate_to_user_id: Id | None = None
    escalate_to_team_id: Id | None = None
    escalate_to_rotation_id: Id | None = None
    reassign: bool = False
    notification_channels: list[Annotated[str, Field(max_length=20)]] = Field(default=["in_app"], max_length=4)
    business_hours_only: bool = False
    add_internal_note: bool = False
    internal_note_template: str | None = Field(default=None, max_length=5_000)
    version: int | None = None

    @model_validator(mode="before")
    @classmethod
    def accept_escalate_after_minutes(cls, data: Any) -> Any:
        """The API guide's ``escalateAfterMinutes`` at the top level means ``when.afterMinutes``."""
        if isinstance(data, dict) and "escalateAfterMinutes" in data and "when" not in data:
            data = dict(data)
            data["when"] = {"afterMinutes": data.pop("escalateAfterMinutes")}
        return data


@router.get("")
async def list_rules(principal: Reader, rules: Rules, page: Annotated[Page, Depends(page_params)],
                     enabled: bool | None = None,
                     priority: Annotated[str | None, Query(json_schema_extra=_PRIORITY)] = None,
                     search: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    items, total = await rules.list(principal.account_id, enabled=enabled, priority=priority, search=search,
                                    page=page.page, page_size=page.page_size)
    return paginated(items, page, total)


@router.post("", status_code=201)
async def create_rule(body: EscalationRuleBody, principal: Manager, rules: Rules, response: Response) -> dict:
    values = body.model_dump(exclude={"version"})
    created = await rules.create(principal.account_id, values)
    response.headers["Location"] = f"/api/tickets/escalation-rules/{created['id']}"
    return created


@router.get("/{rule_id}")
async def get_rule(rule_id: Id, principal: Reader, rules: Rules) -> dict:
    return await rules.get(principal.account_id, rule_id)


@router.put("/{rule_id}")
async def replace_rule(rule_id: Id, body: EscalationRuleBody, principal: Manager, rules: Rules,
                       if_match: IfMatchHeader = None) -> dict:
    values = body.model_dump(exclude={"version"})
    return await rules.replace(principal.account_id, rule_id, values, expected_version(if_match, body.version))


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: Id, principal: Manager, rules: Rules) -> Response:
    await rules.delete(principal.account_id, rule_id)
    return Response(status_code=204)


@ticket_router.get("/{ticket_ref}/escalations")
async def ticket_escalations(ticket_ref: str, principal: Reader, tickets: Tickets, rules: Rules) -> dict:
    ticket = await tickets.get(principal.account_id, ticket_ref)
    return {"data": await rules.history(principal.account_id, ticket.id)}
