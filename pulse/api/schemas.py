"""Request bodies: camelCase, unknown fields rejected (422), the API guide's aliases accepted."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pulse.domain.changes import NewTicket, TicketChanges
from pulse.domain.ticket_fields import INPUT_ALIASES, RowId, plausible_email
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


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def storable_text(cls, value: Any) -> Any:
        """Refuse here (422) what PostgreSQL would refuse later: NUL characters and lone surrogates."""
        if _contains_unstorable(value):
            raise ValueError("must not contain NUL (\\u0000) characters or unpaired surrogates (\\ud800-\\udfff)")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, snake_case."""
        return self.model_dump(exclude_unset=True, by_alias=False)


def not_null(value: Any) -> Any:
    """For PATCH bodies: a field that may be left out but not set to null."""
    if value is None:
        raise ValueError("cannot be null")
    return value


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


class TicketFieldsBody(Body, TicketChanges):
    """The ticket's writable fields and their limits (``TicketChanges``), in camelCase; with the API
    guide's aliases and ``category`` (a category's id or name, resolved by the service)."""

    category: Id | str | None = None

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
    permissions: list[Permission] = Field(min_length=1)
    user_id: Id | None = None


class UserBody(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    role: str = Field(default="agent", max_length=50)
    is_active: bool = True

    _email = field_validator("email")(plausible_email)


class UserPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    role: str | None = Field(default=None, max_length=50)
    is_active: bool | None = None
    version: int | None = None

    _email = field_validator("email")(plausible_email)
    _not_null = field_validator("name", "role", "is_active")(not_null)


class TeamBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    manager_user_id: Id | None = None
    member_ids: list[Id] = Field(default=[], max_length=MAX_TEAM_MEMBERS)
    slack_webhook_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"members": "memberIds"})


class TeamPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    manager_user_id: Id | None = None
    member_ids: list[Id] | None = Field(default=None, max_length=MAX_TEAM_MEMBERS)
    slack_webhook_url: str | None = None
    version: int | None = None

    _not_null = field_validator("name")(not_null)

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"members": "memberIds"})


class NamedBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None


class NamedPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    version: int | None = None

    _not_null = field_validator("name")(not_null)


class TicketTypeBody(NamedBody):
    auto_assignment_enabled: bool = False  # new tickets of the type go to the rotation's next member
    rotation_id: Id | None = None


class TicketTypePatch(NamedPatch):
    auto_assignment_enabled: bool | None = None
    rotation_id: Id | None = None

    _not_null_auto_assignment = field_validator("auto_assignment_enabled")(not_null)
