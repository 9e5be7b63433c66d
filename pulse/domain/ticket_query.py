"""Parsing ticket list parameters (filters, sorting, paging) into a typed query.

Pure: the repository turns a ``TicketQuery`` into parameterised SQL; no user string ever becomes
SQL text. Unknown parameters and sort fields are a 422 that lists the valid ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from pydantic import BaseModel

from pulse.domain.errors import ValidationFailed
from pulse.domain.ids import MAX_INT, is_storable_id, is_storable_int
from pulse.domain.search import MAX_SEARCH_LENGTH, SearchQuery, build_search_query
from pulse.domain.ticket_fields import INPUT_ALIASES, TICKET_FIELDS, TicketField
from pulse.domain.tickets import parse_ticket_number

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _int(value: str) -> int:
    """A number stored as ``integer`` (counters, minutes, ticket numbers)."""
    number = int(value)
    if not is_storable_int(number):
        raise ValueError("out of range")
    return number


def _id(value: str) -> int:
    """A row id (``bigint``)."""
    number = int(value)
    if not is_storable_id(number):
        raise ValueError("not an id")
    return number


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def _datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs an offset, e.g. 2026-01-31T00:00:00Z")
    return parsed


def _enum(enum: type) -> Callable[[str], str]:
    def parse(value: str) -> str:
        return enum(value).value

    return parse


def _text(value: str) -> str:
    return value


SLA_STATUSES = ("on_time", "at_risk", "breached", "paused")


def _sla_status(value: str) -> str:
    if value not in SLA_STATUSES:
        raise ValueError("expected one of " + ", ".join(SLA_STATUSES))
    return value


def _ticket_number(value: str) -> int:
    """``PULSE-42`` or ``42``."""
    number = parse_ticket_number(value)
    return _int(str(number)) if number is not None else _int(value)


# The list parameters of the ticket's fields, from the field registry (pulse.domain.ticket_fields).
_PARSERS: dict[str, Callable[[str], Any]] = {"id": _id, "int": _int, "text": _text, "bool": _bool}
_OWN_PARSERS: dict[str, Callable[[str], Any]] = {"ticketNumber": _ticket_number, "slaStatus": _sla_status}
_SORT_COLUMNS = {"priority": "priority_rank"}  # priority sorts by severity


def _parser(field: TicketField) -> Callable[[str], Any]:
    if field.api in _OWN_PARSERS:
        return _OWN_PARSERS[field.api]
    return _enum(field.enum) if field.enum is not None else _PARSERS[field.kind]


# API name → (column attribute, parser). A filterable field filters by equality, a comma-separated
# value is any-of; a datetime by range instead.
SCALAR_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    field.api: (field.column, _parser(field)) for field in TICKET_FIELDS if field.filter and field.kind != "datetime"}

# Range name → column: ``<name>After`` / ``<name>Before`` (inclusive / exclusive).
RANGE_FIELDS: dict[str, str] = {
    field.range_name: field.column for field in TICKET_FIELDS if field.filter and field.kind == "datetime"}

# API name → column for sorting.
SORT_FIELDS: dict[str, str] = {
    field.api: _SORT_COLUMNS.get(field.api, field.column) for field in TICKET_FIELDS if field.sort}

# Fields sorted descending when no order is given (urgent first, newest first).
DEFAULT_DESCENDING = {"priority", "createdAt", "updatedAt"}

PAGING_PARAMS = {"page", "pageSize", "sortBy", "sortOrder", "sort"}
OTHER_PARAMS = {"tags", "tagsAny", "unassigned", "search"}


class FieldFilter(BaseModel):
    column: str
    values: list[Any]


class RangeFilter(BaseModel):
    column: str
    after: datetime | None = None
    before: datetime | None = None


class SortKey(BaseModel):
    field: str
    column: str
    descending: bool


class TicketQuery(BaseModel):
    equals: list[FieldFilter] = []
    ranges: list[RangeFilter] = []
    tags_all: list[str] = []
    tags_any: list[str] = []
    unassigned: bool | None = None
    # ``customFields.<key>=<value>``; a comma-separated value is any-of (see custom_field_values).
    custom_fields: dict[str, str] = {}
    search: str | None = None
    search_ticket_number: int | None = None
    # None while ``search`` holds no searchable word (then only a ticket number can match).
    search_query: SearchQuery | None = None
    sort: list[SortKey] = []
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def custom_field_values(raw: str) -> list[Any]:
    """The JSON values ``customFields.<key>=<raw>`` matches: each comma-separated part as a string,
    and also as the number / boolean / null it spells (``5`` matches ``"5"`` and ``5``)."""
    values: list[Any] = []
    for part in (p.strip() for p in raw.split(",")):
        values.append(part)
        lowered = part.lower()
        if lowered in ("true", "false"):
            values.append(lowered == "true")
        elif lowered == "null":
            values.append(None)
        else:
            try:
                number = float(part)
            except ValueError:
                continue
            if number == number and abs(number) != float("inf"):
                values.append(int(number) if number.is_integer() and "." not in part and "e" not in lowered else number)
    return values


def filters_to_params(filters: Mapping[str, Any], field: str = "filter") -> dict[str, str]:
    """A JSON filter object (saved views, bulk operations) as list parameters: lists become
    comma-separated values, booleans ``true``/``false``. Nested objects are a 422."""
    params: dict[str, str] = {}
    problems: list[dict[str, str]] = []
    flat: dict[str, Any] = {}
    for name, value in filters.items():
        if name == "customFields" and isinstance(value, dict):
            flat.update({f"customFields.{key}": inner for key, inner in value.items()})
        else:
            flat[name] = value
    for name, value in flat.items():
        if value is None:
            problems.append({"field": f"{field}.{name}", "message": "null is not a filter value"})
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            params[name] = str(value)
        elif isinstance(value, list) and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in value):
            params[name] = ",".join(str(v) for v in value)
        else:
            problems.append({"field": f"{field}.{name}", "message": "expected a string, number, boolean or list of those"})
    if problems:
        raise ValidationFailed("invalid filter", details=problems)
    return params


def valid_filter_names() -> list[str]:
    ranges = [f"{name}{edge}" for name in RANGE_FIELDS for edge in ("After", "Before")]
    return sorted([*SCALAR_FIELDS, *ranges, *OTHER_PARAMS, "customFields.<key>"])


def parse_ticket_query(params: Mapping[str, str], *, allow_paging: bool = True) -> TicketQuery:
    """Parse list parameters; every problem becomes one ``details`` entry of a single 422."""
    problems: list[dict[str, str]] = []
    query = TicketQuery()
    ranges: dict[str, RangeFilter] = {}

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    for raw_name, raw_value in params.items():
        name = INPUT_ALIASES.get(raw_name, raw_name)
        value = raw_value.strip()
        if "\x00" in value or "\x00" in name:
            bad(raw_name.replace("\x00", ""), "contains a NUL character")
            continue
        if name in PAGING_PARAMS:
            if not allow_paging:
                bad(raw_name, "not a filter")
            continue
        if name in SCALAR_FIELDS:
            column, parser = SCALAR_FIELDS[name]
            try:
                values = [parser(part.strip()) for part in value.split(",") if part.strip()]
            except ValueError as exc:
                bad(raw_name, f"invalid value {value!r}: {exc}")
                continue
            if not values:
                bad(raw_name, "empty filter value")
                continue
            query.equals.append(FieldFilter(column=column, values=values))
        elif name == "tags":
            query.tags_all = [t.strip().lower() for t in value.split(",") if t.strip()]
        elif name == "tagsAny":
            query.tags_any = [t.strip().lower() for t in value.split(",") if t.strip()]
        elif name == "unassigned":
            try:
                query.unassigned = _bool(value)
            except ValueError as exc:
                bad(raw_name, str(exc))
        elif name == "search":
            if len(value) > MAX_SEARCH_LENGTH:
                bad(raw_name, f"at most {MAX_SEARCH_LENGTH} characters")
                continue
            query.search = value or None
            if value:
                number = parse_ticket_number(value)
                query.search_ticket_number = number if number is not None and number <= MAX_INT else None
                query.search_query = build_search_query(value)
        elif name.startswith("customFields."):
            key = name[len("customFields."):]
            if not key:
                bad(raw_name, "name the custom field: customFields.<key>=<value>")
            else:
                query.custom_fields[key] = value
        elif name.endswith(("After", "Before")) and name.removesuffix("After").removesuffix("Before") in RANGE_FIELDS:
            base = name.removesuffix("After").removesuffix("Before")
            try:
                instant = _datetime(value)
            except ValueError as exc:
                bad(raw_name, f"invalid timestamp {value!r}: {exc}")
                continue
            entry = ranges.setdefault(base, RangeFilter(column=RANGE_FIELDS[base]))
            if name.endswith("After"):
                entry.after = instant
            else:
                entry.before = instant
        else:
            bad(raw_name, "unknown filter; valid filters: " + ", ".join(valid_filter_names()))
    query.ranges = list(ranges.values())

    if allow_paging:
        _parse_paging(params, query, bad)
    if problems:
        raise ValidationFailed("invalid list parameters", details=problems)
    return query


def _parse_paging(params: Mapping[str, str], query: TicketQuery, bad: Callable[[str, str], None]) -> None:
    for name, attr, upper in (("page", "page", MAX_INT), ("pageSize", "page_size", MAX_PAGE_SIZE)):
        if name in params:
            try:
                number = int(params[name])
                if number < 1 or (upper is not None and number > upper):
                    raise ValueError
                setattr(query, attr, number)
            except ValueError:
                limit = f"1..{upper}" if upper else "≥ 1"
                bad(name, f"must be an integer {limit}")
    try:
        query.sort = parse_sort(params.get("sort"), params.get("sortBy"), params.get("sortOrder"))
    except ValidationFailed as exc:
        for detail in exc.details:
            bad(detail["field"], detail["message"])


def parse_sort(sort: str | None, sort_by: str | None, sort_order: str | None) -> list[SortKey]:
    """``sort=priority,-createdAt`` and/or ``sortBy=priority&sortOrder=asc``."""
    keys: list[SortKey] = []
    problems: list[dict[str, str]] = []
    valid = ", ".join(sorted(SORT_FIELDS))
    if sort_order is not None and sort_order.lower() not in ("asc", "desc"):
        problems.append({"field": "sortOrder", "message": "must be asc or desc"})
    specs: list[tuple[str, bool | None, str]] = []
    if sort_by:
        descending = None if sort_order is None else sort_order.lower() == "desc"
        specs.append((sort_by.strip(), descending, "sortBy"))
    if sort:
        for part in sort.split(","):
            part = part.strip()
            if not part:
                continue
            if part.startswith("-"):
                specs.append((part[1:], True, "sort"))
            else:
                specs.append((part.lstrip("+"), None if part[0] != "+" else False, "sort"))
    for field, descending, param in specs:
        field = INPUT_ALIASES.get(field, field)
        if field not in SORT_FIELDS:
            problems.append({"field": param, "message": f"cannot sort by {field!r}; valid: {valid}"})
            continue
        if descending is None:
            descending = field in DEFAULT_DESCENDING
        keys.append(SortKey(field=field, column=SORT_FIELDS[field], descending=descending))
    if problems:
        raise ValidationFailed("invalid sort", details=problems)
    return keys
