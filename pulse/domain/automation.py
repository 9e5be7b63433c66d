"""Automation rules: a trigger, conditions and ordered actions (the contract's §4), as typed data.

:func:`parse_rule` turns a rule as the API sends it (camelCase) into an :class:`AutomationRule`,
or raises a 422 whose ``details`` name the exact part (``conditions[1].operator``,
``actions[0].status``). Evaluation is :mod:`pulse.domain.automation_eval`; whether users, teams
and rotations named by a rule belong to the account is the service's to check
(:meth:`AutomationRule.references`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from pulse.domain.conditions import Condition, Operator, condition_problem
from pulse.domain.errors import ValidationFailed
from pulse.domain.ids import MAX_ID
from pulse.domain.tickets import Priority, TicketStatus

AUTOMATION_KIND = "automation"  # the agenda items of time_in_status rules
MAX_DEPTH = 10  # a cascade stops here (a rule that would run deeper is logged ``loop_stopped``)
CHANNELS = ("email", "sms", "slack", "in_app")


class Trigger(StrEnum):
    TICKET_CREATED = "ticket_created"
    TICKET_UPDATED = "ticket_updated"
    STATUS_CHANGED = "status_changed"
    PRIORITY_CHANGED = "priority_changed"
    ASSIGNED = "assigned"
    COMMENT_ADDED = "comment_added"
    ESCALATED = "escalated"
    SLA_AT_RISK = "sla_at_risk"
    SLA_BREACHED = "sla_breached"
    TIME_IN_STATUS = "time_in_status"


TIME_TRIGGERS = frozenset({Trigger.SLA_AT_RISK, Trigger.SLA_BREACHED, Trigger.TIME_IN_STATUS})
UPDATE_TRIGGERS = frozenset({Trigger.TICKET_UPDATED, Trigger.STATUS_CHANGED, Trigger.PRIORITY_CHANGED,
                             Trigger.ASSIGNED})


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class TimeInStatus(_Part):
    """``time_in_status``: due ``afterMinutes`` after the ticket entered ``status``."""

    status: TicketStatus
    after_minutes: int = Field(ge=1, le=5_256_000)  # ten years

    @field_validator("status")
    @classmethod
    def _not_closed(cls, status: TicketStatus) -> TicketStatus:
        if status == TicketStatus.CLOSED:
            raise ValueError("a closed ticket has nothing left to do: time_in_status takes another status")
        return status


# -- actions ------------------------------------------------------------------------------------

class ChangeStatus(_Part):
    type: Literal["change_status"] = "change_status"
    status: TicketStatus


class ChangePriority(_Part):
    """A priority, or ``increase`` / ``decrease`` by one step of severity (urgent and low stay)."""

    type: Literal["change_priority"] = "change_priority"
    priority: Priority | Literal["increase", "decrease"]


class AssignToUser(_Part):
    type: Literal["assign_to_user"] = "assign_to_user"
    user_id: RowId


class AssignToTeam(_Part):
    type: Literal["assign_to_team"] = "assign_to_team"
    team_id: RowId


class AssignToRotation(_Part):
    type: Literal["assign_to_rotation"] = "assign_to_rotation"
    rotation_id: RowId


class AddTags(_Part):
    type: Literal["add_tags"] = "add_tags"
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=50)


class RemoveTags(_Part):
    type: Literal["remove_tags"] = "remove_tags"
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=50)


class SetCustomField(_Part):
    type: Literal["set_custom_field"] = "set_custom_field"
    key: str = Field(min_length=1, max_length=200)
    value: Any = None


class AddInternalNote(_Part):
    type: Literal["add_internal_note"] = "add_internal_note"
    body: str = Field(min_length=1, max_length=10_000,
                      validation_alias=AliasChoices("body", "note", "content", "text"))


class SendNotification(_Part):
    """``to``: ``user`` (``userId``, else the assignee), ``team`` (``teamId``, else the assigned
    team), ``manager`` (the assigned team's manager, else the account's admins) or ``requester``
    (email only)."""

    type: Literal["send_notification"] = "send_notification"
    channels: list[Literal["email", "sms", "slack", "in_app"]] = Field(min_length=1, max_length=4)
    to: Literal["user", "team", "manager", "requester"]
    user_id: RowId | None = None
    team_id: RowId | None = None
    subject: str | None = Field(default=None, max_length=500)
    message: str | None = Field(default=None, max_length=10_000)


class PauseSla(_Part):
    type: Literal["pause_sla"] = "pause_sla"
    reason: str | None = Field(default=None, max_length=500)


class ResumeSla(_Part):
    type: Literal["resume_sla"] = "resume_sla"


Action = Union[ChangeStatus, ChangePriority, AssignToUser, AssignToTeam, AssignToRotation, AddTags, RemoveTags,
               SetCustomField, AddInternalNote, SendNotification, PauseSla, ResumeSla]
ACTION_TYPES: dict[str, type[_Part]] = {
    cls.model_fields["type"].default: cls
    for cls in (ChangeStatus, ChangePriority, AssignToUser, AssignToTeam, AssignToRotation, AddTags, RemoveTags,
                SetCustomField, AddInternalNote, SendNotification, PauseSla, ResumeSla)
}


class AutomationRule(BaseModel):
    """A rule as the engine uses it (``id`` 0: an unsaved rule under test)."""

    model_config = ConfigDict(frozen=True)

    id: int = 0
    name: str = ""
    enabled: bool = True
    trigger: Trigger
    trigger_config: TimeInStatus | None = None
    conditions: list[Condition] = []
    conditions_match: Literal["all", "any"] = "all"
    actions: list[Annotated[Action, Field(discriminator="type")]] = []
    execution_order: int = 0

    @property
    def sort_key(self) -> tuple[int, int]:
        return self.execution_order, self.id

    def references(self) -> list[tuple[str, str, int]]:
        """(path, ``user``/``team``/``rotation``, id) of every record the rule names."""
        found = []
        for index, action in enumerate(self.actions):
            for attribute, kind in (("user_id", "user"), ("team_id", "team"), ("rotation_id", "rotation")):
                value = getattr(action, attribute, None)
                if value is not None:
                    found.append((f"actions[{index}].{to_camel(attribute)}", kind, value))
        return found

    def to_api(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.value,
            "triggerConfig": self.trigger_config.model_dump(mode="json", by_alias=True) if self.trigger_config else None,
            "conditions": [c.model_dump(mode="json") for c in self.conditions],
            "conditionsMatch": self.conditions_match,
            "actions": [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in self.actions],
            "executionOrder": self.execution_order,
        }


# -- parsing what the API sends -------------------------------------------------------------------

def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{to_camel(str(part))}"
    return path


def _invalid(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", details=[{"field": path, "message": message}])


def _first_problem(prefix: str, error: ValidationError) -> ValidationFailed:
    problem = error.errors()[0]
    return _invalid(_path(prefix, tuple(problem.get("loc", ()))),
                    str(problem.get("msg", "invalid")).removeprefix("Value error, "))


def parse_condition(raw: Any, path: str) -> Condition:
    if not isinstance(raw, dict):
        raise _invalid(path, "a condition is an object {field, operator, value}")
    unknown = sorted(set(raw) - {"field", "operator", "value"})
    if unknown:
        raise _invalid(f"{path}.{unknown[0]}", "unknown property")
    field = raw.get("field")
    if not isinstance(field, str) or not field:
        raise _invalid(f"{path}.field", "required: a ticket field, customFields.<key> or comment.<field>")
    try:
        operator = Operator(raw.get("operator"))
    except ValueError:
        raise _invalid(f"{path}.operator", f"one of {', '.join(o.value for o in Operator)}") from None
    problem = condition_problem(field, operator, raw.get("value"))
    if problem is not None:
        raise _invalid(f"{path}.{problem[0]}", problem[1])
    return Condition(field=field, operator=operator, value=raw.get("value"))


def parse_action(raw: Any, path: str) -> Action:
    if not isinstance(raw, dict):
        raise _invalid(path, "an action is an object {type, ...params}")
    cls = ACTION_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise _invalid(f"{path}.type", f"one of {', '.join(ACTION_TYPES)}")
    try:
        return cls.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as error:
        raise _first_problem(path, error) from None


def parse_rule(trigger: Any, trigger_config: Any, conditions: list[Any], conditions_match: Any,
               actions: list[Any], execution_order: int = 0, *, rule_id: int = 0, name: str = "",
               enabled: bool = True) -> AutomationRule:
    """A rule from its API parts; a 422 naming the first bad part."""
    if isinstance(trigger, dict):  # {"type": "time_in_status", "status": ..., "afterMinutes": ...}
        trigger_config = {k: v for k, v in trigger.items() if k != "type"} or trigger_config
        trigger = trigger.get("type")
    try:
        parsed_trigger = Trigger(trigger)
    except ValueError:
        raise _invalid("trigger", f"one of {', '.join(t.value for t in Trigger)}") from None
    config = None
    if parsed_trigger == Trigger.TIME_IN_STATUS:
        if not isinstance(trigger_config, dict):
            raise _invalid("triggerConfig", 'time_in_status needs {"status": ..., "afterMinutes": ...}')
        try:
            config = TimeInStatus.model_validate(trigger_config)
        except ValidationError as error:
            raise _first_problem("triggerConfig", error) from None
    elif trigger_config:
        raise _invalid("triggerConfig", f"{parsed_trigger.value} takes no configuration")
    if conditions_match not in ("all", "any"):
        raise _invalid("conditionsMatch", "all or any")
    parsed_conditions = [parse_condition(raw, f"conditions[{i}]") for i, raw in enumerate(conditions)]
    if parsed_trigger not in UPDATE_TRIGGERS:
        for index, condition in enumerate(parsed_conditions):
            if condition.operator in (Operator.CHANGED, Operator.CHANGED_TO, Operator.CHANGED_FROM):
                raise _invalid(f"conditions[{index}].operator",
                               f"{condition.operator.value} is for update triggers "
                               f"({', '.join(sorted(t.value for t in UPDATE_TRIGGERS))})")
    if parsed_trigger != Trigger.COMMENT_ADDED:
        for index, condition in enumerate(parsed_conditions):
            if condition.field.startswith("comment."):
                raise _invalid(f"conditions[{index}].field",
                               f"{condition.field} is only known to comment_added rules (the comment that fired it)")
    if not actions:
        raise _invalid("actions", "a rule needs at least one action")
    parsed_actions = [parse_action(raw, f"actions[{i}]") for i, raw in enumerate(actions)]
    return AutomationRule(id=rule_id, name=name, enabled=enabled, trigger=parsed_trigger, trigger_config=config,
                          conditions=parsed_conditions, conditions_match=conditions_match, actions=parsed_actions,
                          execution_order=execution_order)
