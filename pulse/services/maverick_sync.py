"""The inbound sync: Maverick tickets become Pulse tickets, and their later changes reach them,
always through the ticket's own workflow (the gateway). Keyed by the Maverick id: the link
reserves one Pulse ticket id per Maverick ticket, whose create is idempotent by ticket id, and
each remote version is applied once (its command id names it) — so neither two syncs nor a sync
racing a webhook create a ticket twice or apply a change twice."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

from pulse.db import SessionFactory
from pulse.domain.changes import TicketChanges
from pulse.domain.commands import CreateTicketInput, UpdateTicketInput
from pulse.domain.errors import DomainError
from pulse.domain.maverick import MaverickSettings
from pulse.domain.maverick_sync import (
    FIELDS_VERSION,
    MAVERICK_ACTOR,
    PageResult,
    Placement,
    RemoteTicket,
    TRACKED_PULSE_FIELDS,
    SyncConflict,
    new_ticket,
    remote_changes,
)
from pulse.domain.tickets import TicketStatus
from pulse.gateway import NoRunningWorkflow, TicketGateway
from pulse.integrations.maverick import MaverickClient, MaverickTicket, MaverickUnavailable, RetryPolicy
from pulse.repositories.maverick_sync import (
    FieldChangeRepository,
    MaverickLinkRepository,
    SyncCursorRepository,
    SyncRunRepository,
)
from pulse.repositories.ticket_store import TicketStore
from pulse.services.maverick import MaverickMappingService
from pulse.services.maverick_content import ContentOutcome, MaverickContent

log = logging.getLogger("pulse.maverick")

# (ticket type id, category id) by Maverick category id: a page's tickets resolve their mapping
# once per category (two queries per ticket fewer in an import).
Placements = dict[int | None, tuple[int | None, int | None]]

PAGE_SIZE = 100
DEFAULT_ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
CONCURRENT_TICKETS = 32  # bench/maverick_sync.py: 16 → 0.76x the API's create rate, 32 → 0.90x
# The client's own retries are short; a longer outage is the activity's retries (with backoff).
CLIENT_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=5.0)


def remote_of(ticket: MaverickTicket) -> RemoteTicket:
    return RemoteTicket(id=ticket.id, version=ticket.version, updated_at=ticket.updated_at, subject=ticket.subject,
                        body=ticket.body, status=ticket.status, priority=ticket.priority,
                        category_id=ticket.category_id, merchant_name=ticket.merchant_name,
                        contact_email=ticket.contact_email, contact_phone=ticket.contact_phone)


def client_for(settings: MaverickSettings) -> MaverickClient:
    assert settings.api_url is not None
    return MaverickClient(settings.api_url, settings.secret("api_key") or "", retry=CLIENT_RETRY)


@dataclass
class Applied:
    kind: str  # created | updated | unchanged | skipped | failed
    reasons: list[str] = field(default_factory=list)
    # Maverick could not be reached for the ticket's comments or documents: what was applied
    # counts, the rest comes when the page is tried again.
    unfinished: bool = False


class MaverickImporter:
    """Applies Maverick tickets. Within one process, one Maverick ticket is applied by one caller
    at a time (two syncs, or a sync and a webhook, take turns), so each remote version is applied
    and counted once; across processes the link and the command ids still keep it to one ticket
    and one change per version."""

    def __init__(self, sessions: SessionFactory, gateway: TicketGateway,
                 attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.content = MaverickContent(sessions, gateway, attachment_max_bytes)
        self._turns: dict[tuple[int, str], tuple[asyncio.Lock, int]] = {}

    async def apply(self, account_id: int, settings: MaverickSettings, remote: RemoteTicket,
                    client: MaverickClient | None = None, placements: Placements | None = None,
                    fields_only: bool = False) -> Applied:
        """Apply one Maverick ticket as read; with ``client``, also its new comments and documents.
        ``placements``: where a page's tickets go by Maverick category, resolved once per page.
        ``fields_only`` (a webhook announced field changes alone): an existing ticket's comments and
        documents are not read, and the remote version stays unapplied so the next pull (or full
        fetch) reads them; the fields applied are remembered with their version
        (``FIELDS_VERSION``), so an older read applied later changes no field."""
        key = (account_id, remote.id)
        lock, waiting = self._turns.get(key) or (asyncio.Lock(), 0)
        self._turns[key] = (lock, waiting + 1)
        try:
            async with lock:
                return await self._apply(account_id, settings, remote, client, placements, fields_only)
        finally:
            lock, waiting = self._turns[key]
            if waiting == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, waiting - 1)

    async def _apply(self, account_id: int, settings: MaverickSettings, remote: RemoteTicket,
                     client: MaverickClient | None, placements: Placements | None, fields_only: bool) -> Applied:
        placement: Placement | None = None
        async with self.sessions() as session:
            link = await MaverickLinkRepository(session).get(account_id, remote.id)
            if link is not None and remote.version <= link.remote_version:
                return Applied("unchanged")  # seen already (a repeat, or an older version arriving late)
            # A fields-only read applied this version's fields, or a later one's, already.
            fields_current = link is not None and remote.version <= int((link.remote_fields or {}).get(FIELDS_VERSION)
                                                                        or 0)
            if fields_current and fields_only:
                return Applied("unchanged")
            ticket = await TicketStore(session).read(account_id, link.ticket_id) if link is not None else None
        if link is None:
            placement = await self._placement(account_id, settings, remote, placements)
            async with self.sessions() as session:
                # One statement committed on its own: the account's row (every create's number) is
                # locked for that statement only, not until this coroutine's next turn sends a COMMIT.
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                link, fresh = await MaverickLinkRepository(session).reserve(account_id, remote.id, looked_up=True)
            if not fresh:  # another caller reserved it first: its ticket may exist by now
                async with self.sessions() as session:
                    ticket = await TicketStore(session).read(account_id, link.ticket_id)
        applied_fields: dict[str, Any] = link.remote_fields or {}
        status_after: TicketStatus | None = None  # None: no ticket to bring content to
        read_content = not fields_only or ticket is None  # a new ticket comes with all it has
        if ticket is None:
            new = new_ticket(remote, settings.status_mapping,
                             placement or await self._placement(account_id, settings, remote))
            outcome = await self._send(lambda: self.gateway.create(CreateTicketInput(
                account_id=account_id, ticket_id=link.ticket_id, number=link.number, actor=MAVERICK_ACTOR, ticket=new)),
                Applied("created"))
            status_after = (new.status or TicketStatus.OPEN) if outcome.kind == "created" else None
        elif ticket.deleted_at is not None:
            outcome = Applied("skipped", ["the linked Pulse ticket was deleted"])
        elif fields_current:  # its content is what is left to bring
            outcome, status_after = Applied("unchanged"), ticket.status
        else:
            placement = (await self._placement(account_id, settings, remote, placements)
                         if applied_fields.get("category_id") != remote.category_id else None)
            async with self.sessions() as session:
                changed_at = await FieldChangeRepository(session).last_changes(ticket.id, TRACKED_PULSE_FIELDS,
                                                                               not_by=MAVERICK_ACTOR.kind)
            changes, reasons, conflicts = remote_changes(applied_fields, remote, settings.status_mapping, ticket,
                                                         placement, changed_at)
            outcome = Applied("unchanged", reasons)
            if changes.given() or conflicts:
                outcome = await self._update(account_id, ticket.id, ticket.status, remote, changes, reasons, conflicts)
            status_after = changes.status if outcome.kind == "updated" and changes.status else ticket.status
        if outcome.kind == "failed":
            return outcome
        seen = {kind: set(applied_fields.get(kind) or []) for kind in ("comments", "documents")}
        complete = True
        # Comments and documents left unread: the version stays unapplied (the next pull reads them).
        version_applied = read_content
        if client is not None and status_after is not None and read_content:
            content = ContentOutcome()
            try:
                await self.content.bring(client, account_id, link.ticket_id, status_after == TicketStatus.CLOSED,
                                         remote.id, seen["comments"], seen["documents"], content)
            except MaverickUnavailable as error:
                outcome.unfinished = True
                outcome.reasons.append(f"comments and documents not read yet: {error}")
            seen["comments"].update(content.comments, content.ignored)
            seen["documents"].update(content.documents, content.ignored)
            outcome.reasons += content.skipped + content.failed
            # Not all of it: the version stays unapplied, so the next pull brings the rest.
            complete = not content.failed and not outcome.unfinished
            version_applied = complete
            if outcome.kind == "unchanged" and (content.comments or content.documents):
                outcome.kind = "updated"
        async with self.sessions() as session, session.begin():
            await MaverickLinkRepository(session).mark_applied(
                account_id, remote.id, remote.version if version_applied else None, remote.updated_at,
                {**({} if fields_current else {**remote.snapshot(), FIELDS_VERSION: remote.version}),
                 **{kind: sorted(ids) for kind, ids in seen.items()}})
        if not complete and not outcome.unfinished:  # the run's cursor stops before it
            return Applied("failed", outcome.reasons)
        return outcome

    async def _placement(self, account_id: int, settings: MaverickSettings, remote: RemoteTicket,
                         placements: Placements | None = None) -> Placement:
        async with self.sessions() as session, session.begin():
            return await self._placement_in(session, account_id, settings, remote, placements)

    @staticmethod
    async def _placement_in(session: Any, account_id: int, settings: MaverickSettings,
                            remote: RemoteTicket, placements: Placements | None = None) -> Placement:
        resolved = placements.get(remote.category_id) if placements is not None else None
        if resolved is None:
            resolved = await MaverickMappingService(session).resolve(account_id, remote.category_id)
            if placements is not None:
                placements[remote.category_id] = resolved
        type_id, category_id = resolved
        return Placement(type_id=type_id, category_id=category_id, assigned_to_user_id=settings.default_assignee_id,
                         assigned_to_team_id=settings.default_team_id)

    async def _update(self, account_id: int, ticket_id: int, status: TicketStatus, remote: RemoteTicket,
                      changes: TicketChanges, reasons: list[str], conflicts: list[SyncConflict]) -> Applied:
        command = UpdateTicketInput(actor=MAVERICK_ACTOR, changes=changes, sync_conflicts=conflicts,
                                    command_id=f"maverick/{account_id}/{remote.id}/v{remote.version}")

        async def send() -> Any:
            try:
                return await self.gateway.update(account_id, ticket_id, command, resume=status == TicketStatus.CLOSED)
            except NoRunningWorkflow:
                return await self.gateway.update(account_id, ticket_id, command, resume=True)

        return await self._send(send, Applied("updated", reasons))

    @staticmethod
    async def _send(call: Any, success: Applied) -> Applied:
        """A refusal (4xx: closed, invalid) is the ticket's answer: skipped with its reason. An
        engine that could not be reached (5xx) fails the ticket for this run."""
        try:
            await call()
        except DomainError as error:
            if error.status >= 500:
                return Applied("failed", [f"{error.code}: {error.message}"])
            return Applied("skipped", [*success.reasons, f"{error.code}: {error.message}"])
        return success


class MaverickPuller:
    """One page of "tickets changed since" per call, applied ticket by ticket (a few at a time)."""

    def __init__(self, sessions: SessionFactory, importer: MaverickImporter,
                 settings_of: Callable[[int], Awaitable[MaverickSettings | None]]) -> None:
        self.sessions = sessions
        self.importer = importer
        self.settings_of = settings_of

    async def pull_page(self, account_id: int, run_id: int, since: datetime | None, cursor: str | None,
                        cursor_frozen: bool) -> PageResult:
        settings = await self.settings_of(account_id)
        if settings is None or not settings.enabled or not settings.sync_direction.pulls:
            return PageResult()
        gate = asyncio.Semaphore(CONCURRENT_TICKETS)
        placements: Placements = {}
        async with client_for(settings) as client:
            page = await anext(client.tickets_updated_since(since, page_size=PAGE_SIZE, cursor=cursor))

            async def one(ticket: MaverickTicket) -> Applied:
                async with gate:
                    try:
                        return await self.importer.apply(account_id, settings, remote_of(ticket), client,
                                                         placements)
                    except Exception as error:  # noqa: BLE001 - one ticket's failure stops no other
                        log.exception("Maverick ticket %s of account %s not applied", ticket.id, account_id)
                        return Applied("failed", [f"{type(error).__name__}: {str(error)[:300]}"])

            outcomes = await asyncio.gather(*(one(ticket) for ticket in page.data))
        high_water: datetime | None = None
        failed = stopped = cursor_frozen
        for ticket, outcome in zip(page.data, outcomes):
            failed = failed or outcome.kind == "failed"
            stopped = stopped or outcome.kind == "failed" or outcome.unfinished
            if not stopped:
                high_water = max(high_water or ticket.updated_at, ticket.updated_at)
        unfinished = [t.id for t, o in zip(page.data, outcomes) if o.unfinished]
        skipped = [{"maverickTicketId": t.id, "reason": "; ".join(o.reasons)} for t, o in zip(page.data, outcomes)
                   if o.kind == "skipped" or (o.reasons and o.kind != "failed" and not o.unfinished)]
        errors = [{"maverickTicketId": t.id, "error": "; ".join(o.reasons)}
                  for t, o in zip(page.data, outcomes) if o.kind == "failed"]
        result = PageResult(next_cursor=page.next_cursor, pulled=len(page.data) - len(unfinished),
                            created=sum(o.kind == "created" for o in outcomes),
                            updated=sum(o.kind == "updated" for o in outcomes), failed=failed)
        async with self.sessions() as session, session.begin():
            await SyncRunRepository(session).add_counts(run_id, pulled=result.pulled, created=result.created,
                                                        updated=result.updated, skipped=skipped, errors=errors)
            if high_water is not None:
                await SyncCursorRepository(session).advance(account_id, high_water)
        if unfinished:  # Maverick failed us mid-page: the page is tried again (the applied are skipped)
            raise MaverickUnavailable(f"{len(unfinished)} tickets' comments or documents could not be read")
        return result
