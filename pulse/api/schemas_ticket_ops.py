"""Request bodies of saved views, bulk operations and merges (camelCase, unknown fields → 422)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pulse.api.schemas import Body

MAX_BULK_TICKETS = 10_000


class ViewBody(Body):
    name: str = Field(min_length=1, max_length=200)
    filters: dict[str, Any] = {}
    sort: str | list[str] | None = None
    shared: bool = False
    version: int | None = None


class BulkBody(Body):
    ticket_ids: list[int] | None = Field(default=None, max_length=MAX_BULK_TICKETS)
    filter: dict[str, Any] | None = None
    operation: Literal["update", "delete", "add_tags", "remove_tags"]
    change_set: dict[str, Any] = Field(default={}, alias="changes")

    @model_validator(mode="after")
    def one_selection(self) -> "BulkBody":
        if (self.ticket_ids is None) == (self.filter is None):
            raise ValueError("send either ticketIds or filter")
        return self


class MergeBody(Body):
    primary_ticket_id: int | str
    ticket_ids_to_merge: list[int | str] = Field(json_schema_extra={"minItems": 1})
    merge_comments: bool = True
    merge_attachments: bool = True
    close_secondary_tickets: bool = True
    add_merge_note: bool = True
