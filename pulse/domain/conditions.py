"""Rule conditions over a ticket: ``{field, operator, value}``, shared by escalation and
automation rules. Pure: a condition is checked against the ticket (and, for automation, the
change and the comment that caused the evaluation).

Fields are the ticket's API names (``priority``, ``assignedToTeamId``, ``tags`` …),
``customFields.<key>``, and ``comment.body`` / ``comment.isInternal`` / ``comment.authorType``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_snake

from pulse.domain import records
from pulse.domain.ticket_fields import TICKET_FIELDS, TicketField
from pulse.domain.tickets import AuthorType


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


_SNAKE: dict[str, str] = {}  # field name → attribute name (to_snake is a regex; rules ask for a few names, often)


def _attribute(field: str) -> str:
    name = _SNAKE.get(field)
    if name is None:
        name = _SNAKE[field] = to_snake(field)
    return name


def actual_value(ticket: records.Ticket, field: str, comment: Any = None) -> Any:
    """The field's value on the ticket (``comment.*``: on the comment that caused the evaluation,
    any object with ``body``, ``is_internal`` and ``author_type``)."""
    if field.startswith("customFields."):
        return (ticket.custom_fields or {}).get(field.removeprefix("customFields."))
    if field.startswith("comment."):
        if comment is None:
            return None
        return getattr(comment, _attribute(field.removeprefix("comment.")), None)
    if field == "ticketNumber":
        return ticket.ticket_number
    value = getattr(ticket, _attribute(field), None)
    return getattr(value, "value", value)


def _as_instant(actual: Any, expected: Any) -> Any:
    """An ISO-8601 value compared with a datetime field is read as an instant."""
    if isinstance(actual, datetime) and isinstance(expected, str):
        try:
            return datetime.fromisoformat(expected.replace("Z", "+00:00"))
        except ValueError:
            return expected
    return expected


def _compare(actual: Any, expected: Any, operator: Operator) -> bool:
    expected = _as_instant(actual, expected)
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


_UNREAD = object()


def matches(condition: Condition, ticket: records.Ticket, *, comment: Any = None,
            before: records.Ticket | None = None, actual: Any = _UNREAD) -> bool:
    """Whether ``condition`` holds; the change operators compare with ``before`` (the ticket before
    the change that caused the evaluation; no change → never holds). ``actual``: the field's value
    on ``ticket`` when the caller read it already."""
    if actual is _UNREAD:
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
    expected = _as_instant(actual, expected)
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
              comment: Any = None, before: records.Ticket | None = None) -> bool:
    if not conditions:
        return True
    results = (matches(c, ticket, comment=comment, before=before) for c in conditions)
    return all(results) if match == "all" else any(results)


# -- what a field's values look like (automation rules are checked with this when saved) ----------

_BY_API: dict[str, TicketField] = {field.api: field for field in TICKET_FIELDS}
_ORDERED = (Operator.GREATER_THAN, Operator.LESS_THAN, Operator.GREATER_THAN_OR_EQUAL, Operator.LESS_THAN_OR_EQUAL)
_EQUALITY = (Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN, Operator.NOT_IN)
# The operators each kind of field takes (the change operators take every kind).
_OPERATORS_BY_KIND: dict[str, tuple[Operator, ...]] = {
    "text": (*_EQUALITY, Operator.CONTAINS, Operator.NOT_CONTAINS, *_ORDERED),
    "id": _EQUALITY, "int": (*_EQUALITY, *_ORDERED), "enum": _EQUALITY, "bool": (Operator.EQUALS, Operator.NOT_EQUALS),
    "datetime": (Operator.EQUALS, Operator.NOT_EQUALS, *_ORDERED),
    "tags": (Operator.CONTAINS, Operator.NOT_CONTAINS, Operator.EQUALS, Operator.NOT_EQUALS),
    "json": (Operator.EQUALS, Operator.NOT_EQUALS), "any": tuple(Operator),
}
_COMMENT_KINDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "comment.body": ("text", None), "comment.isInternal": ("bool", None),
    "comment.authorType": ("enum", tuple(a.value for a in AuthorType)),
}


def field_kind(field: str) -> tuple[str, tuple[str, ...] | None] | None:
    """(kind, allowed values of an enum) of a condition field as the API names it; None: unknown."""
    if field.startswith("customFields.") and len(field) > len("customFields."):
        return "any", None
    if field in _COMMENT_KINDS:
        return _COMMENT_KINDS[field]
    row = _BY_API.get(field)
    if row is None:
        return None
    if row.column == "number":
        return "text", None  # PULSE-42
    return row.kind, tuple(e.value for e in row.enum) if row.enum else None


def _value_problem(kind: str, allowed: tuple[str, ...] | None, value: Any) -> str | None:
    if value is None:
        return None if kind in ("id", "text", "datetime", "any", "json", "int") else "must not be null"
    if kind == "text" and not isinstance(value, str):
        return "must be a string"
    if kind in ("id", "int") and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer"
    if kind == "bool" and not isinstance(value, bool):
        return "must be true or false"
    if kind == "enum" and value not in (allowed or ()):
        return f"must be one of {', '.join(allowed or ())}"
    if kind == "datetime":
        if not isinstance(value, str):
            return "must be an ISO-8601 timestamp"
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "must be an ISO-8601 timestamp"
    if kind == "tags" and not (isinstance(value, str) or (isinstance(value, list)
                                                           and all(isinstance(v, str) for v in value))):
        return "must be a tag or a list of tags"
    return None


def condition_problem(field: str, operator: Operator, value: Any) -> tuple[str, str] | None:
    """What is wrong with a condition, as (``field``/``operator``/``value``, message); None: fine."""
    kind = field_kind(field)
    if kind is None:
        return "field", f"unknown field {field!r}"
    kind_name, allowed = kind
    if operator in CHANGE_OPERATORS:
        if field.startswith("comment."):
            return "operator", f"{operator.value} compares a ticket field before and after a change; not {field}"
        if operator == Operator.CHANGED:
            return None if value is None else ("value", "changed takes no value")
    elif operator not in _OPERATORS_BY_KIND[kind_name]:
        return "operator", f"{operator.value} does not apply to {field} ({kind_name})"
    if operator in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, list) or not value:
            return "value", f"{operator.value} takes a non-empty list of values"
        for item in value:
            problem = _value_problem(kind_name, allowed, item)
            if problem:
                return "value", f"each value {problem}"
        return None
    if operator in (Operator.CONTAINS, Operator.NOT_CONTAINS) and kind_name == "tags":
        return None if isinstance(value, str) else ("value", "must be a tag (a string)")
    problem = _value_problem(kind_name, allowed, value)
    if problem is None and operator in _ORDERED and value is None:
        problem = "must not be null"
    return None if problem is None else ("value", problem)
