"""Rule conditions over a ticket: ``{field, operator, value}``, shared by escalation and
automation rules. Pure: a condition is checked against the ticket (and, for automation, the
change and the comment that caused the evaluation).

Fields are the ticket's API names (``priority``, ``assignedToTeamId``, ``tags`` …),
``customFields.<key>``, and ``comment.body`` / ``comment.isInternal`` / ``comment.authorType``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_snake

from pulse.domain import records


class Operator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    GREATER_THAN_OR_EQUAL = "greater_than_or_equal"
    LESS_THAN_OR_EQUAL = "less_than_or_equal"
    IN = "in"
    NOT_IN = "not_in"
    CHANGED = "changed"
    CHANGED_TO = "changed_to"
    CHANGED_FROM = "changed_from"


CHANGE_OPERATORS = (Operator.CHANGED, Operator.CHANGED_TO, Operator.CHANGED_FROM)
_TICKET_FIELDS = set(records.Ticket.model_fields)
_COMMENT_FIELDS = {"comment.body", "comment.isInternal", "comment.authorType"}


def field_exists(field: str) -> bool:
    if field.startswith("customFields.") and len(field) > len("customFields."):
        return True
    return field in _COMMENT_FIELDS or to_snake(field) in _TICKET_FIELDS or field == "ticketNumber"


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1, max_length=200)
    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _known_field(self) -> "Condition":
        if not field_exists(self.field):
            raise ValueError(f"unknown field {self.field!r}")
        if self.operator in (Operator.IN, Operator.NOT_IN) and not isinstance(self.value, list):
            raise ValueError(f"{self.operator.value} takes a list of values")
        return self


def actual_value(ticket: records.Ticket, field: str, comment: records.Comment | None = None) -> Any:
    if field.startswith("customFields."):
        return (ticket.custom_fields or {}).get(field.removeprefix("customFields."))
    if field.startswith("comment."):
        if comment is None:
            return None
        return getattr(comment, to_snake(field.removeprefix("comment.")), None)
    if field == "ticketNumber":
        return ticket.ticket_number
    value = getattr(ticket, to_snake(field), None)
    return getattr(value, "value", value)


def _compare(actual: Any, expected: Any, operator: Operator) -> bool:
    try:
        if operator == Operator.GREATER_THAN:
            return actual is not None and actual > expected
        if operator == Operator.LESS_THAN:
            return actual is not None and actual < expected
        if operator == Operator.GREATER_THAN_OR_EQUAL:
            return actual is not None and actual >= expected
        if operator == Operator.LESS_THAN_OR_EQUAL:
            return actual is not None and actual <= expected
    except TypeError:
        return False
    raise ValueError(operator)


def matches(condition: Condition, ticket: records.Ticket, *, comment: records.Comment | None = None,
            before: records.Ticket | None = None) -> bool:
    """Whether ``condition`` holds; the change operators compare with ``before`` (the ticket before
    the change that caused the evaluation; no change → never holds)."""
    actual = actual_value(ticket, condition.field, comment)
    operator, expected = condition.operator, condition.value
    if operator in CHANGE_OPERATORS:
        if before is None:
            return False
        previous = actual_value(before, condition.field)
        if previous == actual:
            return False
        if operator == Operator.CHANGED_TO:
            return actual == expected
        if operator == Operator.CHANGED_FROM:
            return previous == expected
        return True
    if operator == Operator.EQUALS:
        return actual == expected
    if operator == Operator.NOT_EQUALS:
        return actual != expected
    if operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        if isinstance(actual, list):
            found = expected in actual
        else:
            found = actual is not None and str(expected).lower() in str(actual).lower()
        return found if operator == Operator.CONTAINS else not found
    if operator == Operator.IN:
        return actual in expected
    if operator == Operator.NOT_IN:
        return actual not in expected
    return _compare(actual, expected, operator)


def all_match(conditions: list[Condition], ticket: records.Ticket, *, match: Literal["all", "any"] = "all",
              comment: records.Comment | None = None, before: records.Ticket | None = None) -> bool:
    if not conditions:
        return True
    results = (matches(c, ticket, comment=comment, before=before) for c in conditions)
    return all(results) if match == "all" else any(results)
