"""Request bodies: camelCase, unknown fields rejected (422), the API guide's aliases accepted."""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic.alias_generators import to_camel

from pulse.domain.changes import NewTicket, TicketChanges
from pulse.domain.ticket_fields import EMAIL_SCHEMA, INPUT_ALIASES, RowId, plausible_email
from pulse.domain.tickets import AuthorType, Permission

# A reference to a stored row: anything outside the id column's range names nothing (422).
Id = RowId


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _contains_unstorable(value: Any) -> bool:
    """A NUL (PostgreSQL stores none in text or JSON) or a lone surrogate (not Unicode text: JSON
    may escape one, ``"\\ud800"``, but it cannot be encoded as UTF-8)."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_contains_unstorable(k) or _contains_unstorable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_contains_unstorable(item) for item in value)
    return False


def _json_kind(annotation: Any) -> str | None:
    """``int`` or ``bool`` for a field (or list of them) that JSON must send as that very type;
    None for anything else."""
    arguments = [argument for argument in get_args(annotation) if argument is not type(None)]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _json_kind(arguments[0])
    if origin in (Union, UnionType):
        kinds = {_json_kind(argument) for argument in arguments}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is list and len(arguments) == 1:
        item = _json_kind(arguments[0])
        return f"list[{item}]" if item in ("int", "bool") else None
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    return None


def _wrong_json_type(kind: str | None, value: Any) -> str | None:
    """What is wrong with ``value`` for a field of this kind: pydantic's lax mode would take
    ``0`` for false, ``true`` for 1 and ``"7"`` for 7, which the schema does not allow."""
    if kind == "int" and isinstance(value, (bool, str)):
        return "must be an integer"
    if kind == "bool" and value is not None and not isinstance(value, bool):
        return "must be true or false"
    if kind in ("list[int]", "list[bool]") and isinstance(value, list):
        return next((problem for item in value if (problem := _wrong_json_type(kind[5:-1], item))), None)
    return None


def not_null(value: Any) -> Any:
    """For PATCH bodies: a field that may be left out but not set to null (the schema says so too:
    ``Body`` drops ``null`` from the types of fields validated by this function)."""
    if value is None:
        raise ValueError("cannot be null")
    return value


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def storable_and_typed(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse here (422) what PostgreSQL would refuse later (NUL characters and lone surrogates)
        and what the schema's types do not allow (a number for a boolean, a boolean for an id)."""
        if _contains_unstorable(value):
            raise ValueError("must not contain NUL (\\u0000) characters or unpaired surrogates (\\ud800-\\udfff)")
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and (problem := _wrong_json_type(_json_kind(field.annotation), value)):
            raise ValueError(problem)
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """Fields that may be left out but not set to null are not nullable in the schema."""
        json_schema = handler(core_schema)
        properties = handler.resolve_ref_schema(json_schema).get("properties", {})
        for name in cls._refusing_null():
            field = cls.model_fields[name]
            prop = properties.get(field.alias or name)
            if prop is None or "anyOf" not in prop:
                continue
            kept = [option for option in prop.pop("anyOf") if option.get("type") != "null"]
            prop.pop("default", None)
            stated = kept[0] if len(kept) == 1 else {"anyOf": kept}
            prop.update({key: value for key, value in stated.items() if key not in prop})  # the field's extras win
        return json_schema

    @classmethod
    def _refusing_null(cls) -> set[str]:
        return {name for decorator in cls.__pydantic_decorators__.field_validators.values()
                if getattr(decorator.func, "__func__", decorator.func) is not_null
                for name in decorator.info.fields}

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, snake_case."""
        return self.model_dump(exclude_unset=True, by_alias=False)


def _rename_aliases(data: Any, aliases: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        return data
    renamed = dict(data)
    for alias, name in aliases.items():
        if alias in renamed:
            if name in renamed:
                raise ValueError(f"send either {alias} or {name}, not both")
            renamed[name] = renamed.pop(alias)
    return renamed


# The ticket fields' other names (assignedTo → assignedToUserId …), from the field registry.
TICKET_ALIASES = INPUT_ALIASES
# Bounded lists: ids named in one request are checked in one query, but not without end.
MAX_MENTIONS = 100
MAX_TEAM_MEMBERS = 1000
MAX_DESCRIPTION = 5_000
MAX_URL = 2_000


class TicketFieldsBody(Body, TicketChanges):
    """The ticket's writable fields and their limits (``TicketChanges``), in camelCase; with the API
    guide's aliases and ``category`` (a category's id or name, resolved by the service)."""

    category: Id | Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, TICKET_ALIASES)


# NewTicket first: pydantic takes an inherited field from the first base that has it, so the
# required ``subject`` (and ``source``) come from NewTicket, the rest from TicketFieldsBody.
class TicketCreateBody(NewTicket, TicketFieldsBody):
    pass


class TicketUpdateBody(TicketFieldsBody):
    version: int | None = None

    _not_null = field_validator("subject", "priority", "status")(not_null)


class CommentBody(Body):
    body: str = Field(min_length=1, max_length=100_000)
    is_internal: bool = False
    notify_customer: bool = False
    author_type: AuthorType = AuthorType.AGENT
    mentions: list[Id] = Field(default=[], max_length=MAX_MENTIONS)

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"content": "body"})


class AccountBody(Body):
    name: str = Field(min_length=1, max_length=200)


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=200)
    permissions: list[Permission] = Field(min_length=1, max_length=len(Permission))
    user_id: Id | None = None


class UserBody(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, json_schema_extra=EMAIL_SCHEMA)
    phone: str | None = Field(default=None, max_length=50)
    role: str = Field(default="agent", max_length=50)
    is_active: bool = True

    _email = field_validator("email")(plausible_email)


class UserPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, json_schema_extra=EMAIL_SCHEMA)
    phone: str | None = Field(default=None, max_length=50)
    role: str | None = Field(default=None, max_length=50)
    is_active: bool | None = None
    version: int | None = None

    _email = field_validator("email")(plausible_email)
    _not_null = field_validator("name", "role", "is_active")(not_null)


class TeamBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    manager_user_id: Id | None = None
    member_ids: list[Id] = Field(default=[], max_length=MAX_TEAM_MEMBERS)
    slack_webhook_url: str | None = Field(default=None, max_length=MAX_URL)

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"members": "memberIds"})


class TeamPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    manager_user_id: Id | None = None
    member_ids: list[Id] | None = Field(default=None, max_length=MAX_TEAM_MEMBERS)
    slack_webhook_url: str | None = Field(default=None, max_length=MAX_URL)
    version: int | None = None

    _not_null = field_validator("name")(not_null)

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"members": "memberIds"})


class NamedBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class NamedPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    version: int | None = None

    _not_null = field_validator("name")(not_null)


class TicketTypeBody(NamedBody):
    auto_assignment_enabled: bool = False  # new tickets of the type go to the rotation's next member
    rotation_id: Id | None = None


class TicketTypePatch(NamedPatch):
    auto_assignment_enabled: bool | None = None
    rotation_id: Id | None = None

    _not_null_auto_assignment = field_validator("auto_assignment_enabled")(not_null)
