"""The API's side of tickets: reads from PostgreSQL, writes as updates to the ticket's workflow.

Cost per call: a read is one indexed lookup (+ one count for lists beyond one page). A write is
one Temporal update round trip, whose handler runs one local activity = one database transaction,
after one ticket lookup (to resolve ``PULSE-n``, closed tickets and the account); a PATCH by
numeric id skips the lookup while the ticket's workflow runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from pulse.db import SessionFactory, reading
from pulse.domain import records
from pulse.domain.changes import REFERENCE_FIELDS, NewTicket, TicketChanges, check_custom_fields_size
from pulse.domain.commands import (
    Actor,
    AddCommentInput,
    CreateTicketInput,
    DeleteTicketInput,
    PauseSlaInput,
    ResumeSlaInput,
    UpdateTicketInput,
)
from pulse.domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from pulse.domain.ids import MAX_INT, parse_id
from pulse.domain.ticket_query import TicketQuery
from pulse.domain.tickets import Permission, TicketStatus, parse_ticket_number
from pulse.gateway import NoRunningWorkflow, TicketGateway, resuming_when_needed
from pulse.models import Ticket, TicketCategory, User
from pulse.repositories.reference import ReferenceRepository
from pulse.repositories.search_index import SearchIndexQueue
from pulse.repositories.ticket_lists import TicketLists, TicketPage
from pulse.repositories.ticket_store import TicketStore
from pulse.repositories.tickets import CommentRepository, TicketRepository, TimelineRepository
from pulse.search_index.engine import SearchIndexReader, servable
from pulse.services.auth import Principal

log = logging.getLogger("pulse.tickets")

Result = TypeVar("Result")
ChangesModel = TypeVar("ChangesModel", bound=BaseModel)


def actor_of(principal: Principal) -> Actor:
    return Actor(kind="user", user_id=principal.user_id)


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _changes(model: type[ChangesModel], fields: dict[str, Any]) -> ChangesModel:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise ValidationFailed("invalid ticket fields", details=[
            {"field": ".".join(str(part) for part in problem.get("loc", ())) or "body",
             "message": str(problem.get("msg", "invalid"))} for problem in error.errors()]) from None


@dataclass
class TicketList:
    tickets: list[dict[str, Any]]  # each ticket as the API shows it (``records.ticket_api_values``)
    total: int
    total_is_estimate: bool = False
    snippets: dict[int, str] = field(default_factory=dict)
    repository_ms: float = 0.0  # the repository call (``TicketLists.page``), for Server-Timing
    engine: str = "postgres"  # what found a search's page: "tantivy" (the index) or "postgres"


MAX_MERGE_HOPS = 10
_TICKET_FIELDS = frozenset(records.Ticket.model_fields)


def ticket_api_values(row: Ticket) -> dict[str, Any]:
    """A ticket row just loaded, as the API shows it, from its loaded values: no record is built
    (``from_attributes`` read each column through SQLAlchemy's descriptor: 3.6 ms of CPU for a page
    of 50; a record validated from the values and dumped, 0.4 + 0.3 ms). A row missing some field's
    value (expired, deferred) is read the slow way."""
    values = row.__dict__
    if _TICKET_FIELDS <= values.keys():
        return records.ticket_api_values(values)
    return records.Ticket.model_validate(row).to_api()


class TicketService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str, *,
                 search_index: SearchIndexReader | None = None) -> None:
        self.sessions = sessions
        self.gateway = TicketGateway(temporal, task_queue)
        self.search_index = search_index

    # -- reads ----------------------------------------------------------------------------------

    async def resolve(self, account_id: int, reference: str) -> Ticket:
        """A ticket by numeric id or ``PULSE-n``, within the account (404 otherwise)."""
        async with self.sessions() as session:
            repository = TicketRepository(session)
            number = parse_ticket_number(reference)
            ticket = None
            if number is not None:
                if number <= MAX_INT:
                    ticket = await repository.get_by_number(account_id, number)
            elif (ticket_id := parse_id(reference)) is not None:
                ticket = await repository.get(account_id, ticket_id)
            if ticket is None:
                raise NotFound(f"ticket {reference} not found")
            return ticket

    async def get(self, account_id: int, reference: str) -> records.Ticket:
        return records.Ticket.model_validate(await self.resolve(account_id, reference))

    async def list_page(self, account_id: int, query: TicketQuery, *, include_internal: bool = False) -> TicketList:
        """A page of tickets with its total (an estimate above 10,000, flagged) and, for a search,
        a snippet per ticket. ``include_internal``: internal notes are searched (writeSupport).
        Read without a transaction (``reading``: no BEGIN and ROLLBACK round trips)."""
        started = time.perf_counter()
        async with reading(self.sessions) as session:
            page, engine = None, "postgres"
            if self.search_index is not None and servable(query):
                page, engine = await self._indexed_page(session, account_id, query, include_internal), "tantivy"
            if page is None:
                page, engine = await TicketLists(session).page(account_id, query, include_internal=include_internal), \
                    "postgres"
            repository_ms = (time.perf_counter() - started) * 1000
            return TicketList(
                tickets=[ticket_api_values(row) for row in page.tickets],
                total=page.total,
                total_is_estimate=page.total_is_estimate,
                snippets=page.snippets,
                repository_ms=repository_ms,
                engine=engine,
            )

    async def _indexed_page(self, session: AsyncSession, account_id: int, query: TicketQuery,
                            include_internal: bool) -> TicketPage | None:
        """A search page found in the search index, with the account's tickets changed since
        they were indexed (at most ``PENDING_CAP``) checked in PostgreSQL instead, so every write
        acknowledged before the search shows in it; the page's rows, ranking and snippets from
        PostgreSQL by id. None (PostgreSQL answers) when there is no index yet or more tickets
        wait. 2 queries more than the page itself (the queue, the changed tickets' matches)."""
        assert self.search_index is not None
        freshness = await SearchIndexQueue(session).freshness(account_id)
        searcher = self.search_index.searcher(freshness.index_id, freshness.generation)
        if searcher is None or freshness.pending_ids is None:
            return None
        lists = TicketLists(session)
        found = searcher.find(account_id, query, include_internal, excluded=freshness.pending_ids)
        changed = await lists.ids_matching_among(account_id, query, include_internal, freshness.pending_ids)
        return await lists.page_of_found(account_id, query, include_internal=include_internal,
                                         ids=found.ids + changed, total=found.total + len(changed),
                                         estimated=found.estimated)

    async def comments(
        self, principal: Principal, reference: str, *, include_internal: bool, page: int, page_size: int
    ) -> tuple[list[records.Comment], int]:
        ticket = await self.resolve(principal.account_id, reference)
        include_internal = include_internal and principal.has(Permission.WRITE_SUPPORT)
        async with self.sessions() as session:
            rows, total = await CommentRepository(session).list(
                ticket.id, include_internal=include_internal, page=page, page_size=page_size
            )
            return [records.Comment.model_validate(row) for row in rows], total

    async def timeline(
        self, account_id: int, reference: str, *, page: int, page_size: int
    ) -> tuple[list[records.TimelineEntry], int]:
        ticket = await self.resolve(account_id, reference)
        async with self.sessions() as session:
            rows, total = await TimelineRepository(session).list(ticket.id, page=page, page_size=page_size)
            return [records.TimelineEntry.model_validate(row) for row in rows], total

    # -- writes ---------------------------------------------------------------------------------

    async def _resolve_category(self, account_id: int, fields: dict[str, Any]) -> None:
        """``category`` (the API guide's alias) names a category by id or by name."""
        if "category" not in fields:
            return
        category = fields.pop("category")
        if "category_id" in fields:
            raise ValidationFailed("send category or categoryId, not both",
                                   details=[{"field": "category", "message": "duplicate of categoryId"}])
        if category is None or isinstance(category, int):
            fields["category_id"] = category
            return
        async with self.sessions() as session:
            found = await ReferenceRepository(session, TicketCategory).find_by_name(account_id, category)
        if found is None:
            raise ValidationFailed("unknown category",
                                   details=[{"field": "category", "message": f"no category named {category!r}"}])
        fields["category_id"] = found.id

    async def check_references(self, account_id: int, given: dict[str, Any]) -> None:
        """Referenced users, teams, types and categories must be the account's (422 otherwise)."""
        references = {field: given[field] for field in REFERENCE_FIELDS if given.get(field) is not None}
        if not references:
            return
        async with self.sessions() as session:
            missing = await TicketStore(session).missing_references(account_id, references)
        if missing:
            raise ValidationFailed("unknown referenced record", details=[
                {"field": to_camel(field), "message": f"no {REFERENCE_FIELDS[field]} with id {references[field]} in this account"}
                for field in missing])

    async def create(self, principal: Principal, fields: dict[str, Any], idempotency_key: str | None) -> tuple[records.Ticket, bool]:
        """Create a ticket (update-with-start). Returns the ticket and whether it was created now
        (False when an ``Idempotency-Key`` replays an earlier create).

        The key is bound to the ticket id (and number) before the workflow starts, and stays bound
        whatever happens next unless the create fails for good (a 4xx): a retry after a 503 or a
        lost answer re-drives the same ticket id, which the workflow creates at most once."""
        account_id = principal.account_id
        await self._resolve_category(account_id, fields)
        new = _changes(NewTicket, fields)
        check_custom_fields_size(new.custom_fields)
        await self.check_references(account_id, new.given())
        replayed = None
        request_hash = _request_hash(fields)
        async with self.sessions() as session, session.begin():
            tickets = TicketRepository(session)
            if idempotency_key:
                replayed = await tickets.bound_create_key(account_id, idempotency_key)
            if replayed is None:
                ticket_id, number = await tickets.allocate(account_id)
                if idempotency_key:  # None unless a concurrent request with the key was first
                    replayed = await tickets.claim_create_key(account_id, idempotency_key, request_hash,
                                                              ticket_id, number)
        if replayed is not None:
            ticket_id, number, earlier_hash = replayed
            if earlier_hash and earlier_hash != request_hash:
                raise ValidationFailed("this Idempotency-Key was used for a different request", details=[
                    {"field": "Idempotency-Key", "message": "already used with another body within 24 hours"}])
            async with self.sessions() as session:
                existing = await TicketStore(session).read(account_id, ticket_id)
            if existing is not None:
                return existing, False
        command = CreateTicketInput(account_id=account_id, ticket_id=ticket_id, number=number,
                                    actor=actor_of(principal), ticket=new)
        try:
            ticket = await self.gateway.create(command)
        except DomainError as error:
            if idempotency_key and error.status < 500 and replayed is None:
                async with self.sessions() as session, session.begin():
                    await TicketRepository(session).release_create_key(account_id, idempotency_key, ticket_id)
            raise
        return ticket, replayed is None

    async def _command(self, principal: Principal, reference: str,
                       send: Callable[[int, bool], Awaitable[Result]]) -> Result:
        """Send a command to the ticket's workflow: by numeric id straight to it; when it has no
        running workflow (closed, lost) or for ``PULSE-n``, after looking the ticket up, with a
        start of a run that loads it (``resume``)."""
        if parse_id(reference) is not None:
            try:
                return await send(int(reference), False)
            except NoRunningWorkflow:
                pass
        ticket = await self.resolve(principal.account_id, reference)
        try:
            return await send(ticket.id, True)
        except NoRunningWorkflow:
            raise NotFound(f"ticket {reference} not found") from None

    async def update(self, principal: Principal, reference: str, changes: dict[str, Any],
                     expected_version: int | None) -> records.Ticket:
        await self._resolve_category(principal.account_id, changes)
        command = UpdateTicketInput(actor=actor_of(principal), changes=_changes(TicketChanges, changes),
                                    expected_version=expected_version)
        check_custom_fields_size(command.changes.custom_fields)
        account_id = principal.account_id
        return await self._command(principal, reference,
                                   lambda ticket_id, resume: self.gateway.update(account_id, ticket_id, command,
                                                                                 resume=resume))

    async def delete(self, principal: Principal, reference: str, expected_version: int | None) -> records.Ticket:
        command = DeleteTicketInput(actor=actor_of(principal), expected_version=expected_version)
        account_id = principal.account_id
        return await self._command(principal, reference,
                                   lambda ticket_id, resume: self.gateway.delete(account_id, ticket_id, command,
                                                                                 resume=resume))

    async def _check_mentions(self, account_id: int, user_ids: list[int]) -> None:
        """Mentioned users are notified: they must be users of this account (one query)."""
        if not user_ids:
            return
        async with self.sessions() as session:
            found = await ReferenceRepository(session, User).existing_ids(account_id, user_ids)
        missing = [uid for uid in dict.fromkeys(user_ids) if uid not in found]
        if missing:
            raise ValidationFailed("unknown mentioned users", details=[
                {"field": "mentions", "message": f"no user with id {uid} in this account"} for uid in missing])

    async def add_comment(self, principal: Principal, reference: str, comment: AddCommentInput,
                          idempotency_key: str | None) -> records.Comment:
        ticket = await self.resolve(principal.account_id, reference)
        await self._check_mentions(principal.account_id, comment.mentions)
        for _ in range(MAX_MERGE_HOPS):  # a comment to a merged ticket lands on the ticket it was merged into
            if ticket.merged_into_ticket_id is None:
                break
            ticket = await self.resolve(principal.account_id, str(ticket.merged_into_ticket_id))
        closed = ticket.status == TicketStatus.CLOSED.value
        if closed:
            if not principal.has(Permission.MANAGE_SETTINGS):
                raise Forbidden("closed tickets take comments only from manageSettings holders", code="ticket_closed")
            comment = comment.model_copy(update={"is_internal": True, "notify_customer": False})
        if idempotency_key:
            # The key names the comment's write (its outcome is replayed), not the update: a first
            # attempt that failed is not replayed as a failure.
            digest = hashlib.sha256(f"{ticket.id}/{idempotency_key}".encode()).hexdigest()[:32]
            comment = comment.model_copy(update={"command_id": f"comment-key/{principal.account_id}/{digest}"})
        result = await resuming_when_needed(closed, lambda resume: (
            self.gateway.comment(ticket.account_id, ticket.id, comment, resume=resume)))
        return result.comment

    async def pause_sla(self, principal: Principal, reference: str, reason: str | None) -> records.Ticket:
        """Pause the SLA clock by hand (an update of the ticket's workflow)."""
        command = PauseSlaInput(actor=actor_of(principal), reason=reason)
        account_id = principal.account_id
        return await self._command(principal, reference,
                                   lambda ticket_id, resume: self.gateway.pause_sla(account_id, ticket_id, command,
                                                                                    resume=resume))

    async def resume_sla(self, principal: Principal, reference: str, reason: str | None) -> records.Ticket:
        """End a manual SLA pause (a pause by status lasts until the status changes: 409)."""
        command = ResumeSlaInput(actor=actor_of(principal), reason=reason)
        account_id = principal.account_id
        return await self._command(principal, reference,
                                   lambda ticket_id, resume: self.gateway.resume_sla(account_id, ticket_id, command,
                                                                                     resume=resume))
