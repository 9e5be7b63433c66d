"""Request bodies: camelCase, unknown fields rejected (422), the API guide's aliases accepted."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pulse.domain.ids import MAX_ID
from pulse.domain.tickets import AuthorType, Permission, Priority, TicketSource, TicketStatus

# A reference to a stored row: anything outside the id column's range names nothing (422).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_contains_nul(item) for item in value)
    return False


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def no_nul_characters(cls, value: Any) -> Any:
        """PostgreSQL stores no NUL character in text or JSON: refuse it here (422), not there."""
        if _contains_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, snake_case."""
        return self.model_dump(exclude_unset=True, by_alias=False)


def plausible_email(value: str | None) -> str | None:
    if value is not None and ("@" not in value or value.startswith("@") or value.endswith("@")):
        raise ValueError("not an email address")
    return value


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


TICKET_ALIASES = {
    "assignedTo": "assignedToUserId",
    "assignedTeamId": "assignedToTeamId",
    "ticketTypeId": "typeId",
}


class TicketFieldsBody(Body):
    description: str | None = Field(default=None, max_length=100_000)
    priority: Priority | None = None
    status: TicketStatus | None = None
    assigned_to_user_id: Id | None = None
    assigned_to_team_id: Id | None = None
    type_id: Id | None = None
    category_id: Id | None = None
    category: Id | str | None = None
    tags: list[str] | None = None
    requester_name: str | None = Field(default=None, max_length=200)
    requester_email: str | None = Field(default=None, max_length=320)
    requester_phone: str | None = Field(default=None, max_length=50)
    custom_fields: dict[str, Any] | None = None
    external_source: str | None = Field(default=None, max_length=32)
    external_ticket_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, TICKET_ALIASES)

    _requester_email = field_validator("requester_email")(plausible_email)

    @field_validator("tags")
    @classmethod
    def tags_are_short(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(len(tag) > 100 for tag in value):
            raise ValueError("a tag is at most 100 characters")
        return value


class TicketCreateBody(TicketFieldsBody):
    subject: str = Field(min_length=1, max_length=500)
    source: TicketSource | None = None


class TicketUpdateBody(TicketFieldsBody):
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    version: int | None = None

    @field_validator("subject", "priority", "status")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class CommentBody(Body):
    body: str = Field(min_length=1, max_length=100_000)
    is_internal: bool = False
    notify_customer: bool = False
    author_type: AuthorType = AuthorType.AGENT
    mentions: list[Id] = []

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
    member_ids: list[Id] = []
    slack_webhook_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def accept_aliases(cls, data: Any) -> Any:
        return _rename_aliases(data, {"members": "memberIds"})


class TeamPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    manager_user_id: Id | None = None
    member_ids: list[Id] | None = None
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
