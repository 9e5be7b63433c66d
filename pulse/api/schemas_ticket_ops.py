"""Request bodies of saved views, bulk operations and merges (camelCase, unknown fields → 422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pulse.api.schemas import Body
from pulse.services.ticket_merge import MAX_TICKETS_PER_MERGE

MAX_BULK_TICKETS = 10_000


class ViewBody(Body):
    name: str = Field(min_length=1, max_length=200)
    filters: dict[str, Any] = Field(default={}, json_schema_extra={"maxProperties": 100})
    sort: (Annotated[str, Field(max_length=500)]
           | Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=20)] | None) = None
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
    primary_ticket_id: int | Annotated[str, Field(max_length=40)]
    # counted by the merge service (its own message)
    ticket_ids_to_merge: list[int | Annotated[str, Field(max_length=40)]] = Field(
        json_schema_extra={"minItems": 1, "maxItems": MAX_TICKETS_PER_MERGE})
    merge_comments: bool = True
    merge_attachments: bool = True
    close_secondary_tickets: bool = True
    add_merge_note: bool = True
