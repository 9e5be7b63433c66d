"""Saved views: named filters + sort, the queues agents work from.

A view belongs to the user who created it; ``shared`` makes it visible (read-only) to everyone
in the account. Filters and sort are validated exactly like the list's parameters when saved,
and stored normalised (``{"priority": "urgent,high"}``, ``"priority,-createdAt"``), so running a
view later can only fail if the vocabulary itself changes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.errors import DomainError, Forbidden, NotFound, ValidationFailed, VersionConflict
from pulse.domain.records import Record
from pulse.domain.ticket_query import TicketQuery, filters_to_params, parse_sort, parse_ticket_query
from pulse.models import SavedView
from pulse.repositories.views import SavedViewRepository
from pulse.services.auth import Principal


class SavedViewRecord(Record):
    id: int
    name: str
    filters: dict[str, Any]
    sort: str | None = None
    shared: bool
    owner_user_id: int
    version: int
    created_at: datetime
    updated_at: datetime


def _prefixed(error: ValidationFailed, prefix: str) -> ValidationFailed:
    details = [{**d, "field": f"{prefix}.{d['field']}" if not d["field"].startswith(prefix) else d["field"]}
               for d in error.details]
    return ValidationFailed(error.message, details=details)


def normalise_view(filters: dict[str, Any], sort: str | list[str] | None) -> tuple[dict[str, str], str | None]:
    """Validate a view's filters and sort like list parameters; 422 names each bad one."""
    problems: list[dict[str, str]] = []
    params: dict[str, str] = {}
    for name, value in filters.items():
        try:
            params.update(filters_to_params({name: value}, "filters"))
        except ValidationFailed as error:
            problems += error.details
    try:
        parse_ticket_query(params, allow_paging=False)
    except ValidationFailed as error:
        problems += _prefixed(error, "filters").details
    sort_text = ",".join(sort) if isinstance(sort, list) else sort
    sort_text = (sort_text or "").strip() or None
    if sort_text is not None:
        try:
            parse_sort(sort_text, None, None)
        except ValidationFailed as error:
            problems += error.details
    if problems:
        raise ValidationFailed("invalid view", details=problems)
    return params, sort_text


def view_query(view: SavedView, page: int, page_size: int) -> TicketQuery:
    """The ticket query a saved view runs, at a page."""
    query = parse_ticket_query(dict(view.filters or {}), allow_paging=False)
    if view.sort:
        query.sort = parse_sort(view.sort, None, None)
    query.page, query.page_size = page, page_size
    return query


class SavedViewService:
    """Uses the request's session (the request owns the transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.views = SavedViewRepository(session)

    @staticmethod
    def _owner(principal: Principal) -> int:
        if principal.user_id is None:
            raise Forbidden("saved views belong to a user; this token has no user", code="no_user")
        return principal.user_id

    async def get(self, principal: Principal, view_id: int) -> SavedView:
        view = await self.views.get_visible(principal.account_id, principal.user_id, view_id)
        if view is None:
            raise NotFound(f"view {view_id} not found")
        return view

    async def _owned(self, principal: Principal, view_id: int) -> SavedView:
        view = await self.get(principal, view_id)
        if view.owner_user_id != principal.user_id:
            raise Forbidden("only the view's owner can change it", code="not_owner")
        return view

    async def list(self, principal: Principal, page: int, page_size: int) -> tuple[list[SavedView], int]:
        rows, total = await self.views.list_visible(principal.account_id, principal.user_id,
                                                    page=page, page_size=page_size)
        return list(rows), total

    async def create(self, principal: Principal, name: str, filters: dict[str, Any],
                     sort: str | list[str] | None, shared: bool) -> SavedView:
        owner = self._owner(principal)
        params, sort_text = normalise_view(filters, sort)
        return await self.views.add(SavedView(account_id=principal.account_id, owner_user_id=owner, name=name,
                                              filters=params, sort=sort_text, shared=shared))

    async def replace(self, principal: Principal, view_id: int, name: str, filters: dict[str, Any],
                      sort: str | list[str] | None, shared: bool, expected_version: int | None) -> SavedView:
        view = await self._owned(principal, view_id)
        if expected_version is not None and expected_version != view.version:
            raise VersionConflict(f"view is at version {view.version}, not {expected_version}; reload and retry")
        params, sort_text = normalise_view(filters, sort)
        view.name, view.filters, view.sort, view.shared = name, params, sort_text, shared
        view.version += 1
        view.updated_at = datetime.now(timezone.utc)
        await self.session.flush()
        return view

    async def delete(self, principal: Principal, view_id: int) -> None:
        await self.views.delete(await self._owned(principal, view_id))

    @staticmethod
    def query(view: SavedView, page: int, page_size: int) -> TicketQuery:
        try:
            return view_query(view, page, page_size)
        except DomainError as error:  # stored before the vocabulary changed
            raise ValidationFailed(f"view {view.id} no longer parses: {error.message}; update it",
                                   details=error.details) from None
