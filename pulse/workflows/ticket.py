"""TicketWorkflow: one long-lived workflow per ticket (``ticket-<accountId>-<ticketId>``).

Every command to a ticket is an update (sent through ``pulse.gateway``): its validator rejects
invalid requests before anything reaches history, its handler applies the change in one local
activity — one database transaction that runs the whole change pipeline (change, rules hook, SLA
clock, row + timeline + outbox) — and answers with the committed ticket. The workflow's
activities are the only writers of the ticket's row.

The run loop sleeps until the earliest item of the ticket's **agenda** (``pulse.domain.agenda``:
SLA thresholds, and whatever other sources give) and acts on it; each item fires once per SLA
cycle. After every commit the outbox's new events go to their consumers as regular activities
that never hold up the ticket. The workflow ends when the ticket is closed or deleted; a later
command to such a ticket (a comment on a closed ticket, a delete) starts a short run that loads
the ticket, takes the command and ends again (``resume``) — and so does a command to an open
ticket whose workflow is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pulse.activities.merge import MergeActivities
    from pulse.activities.outbox import OutboxActivities
    from pulse.activities.tickets import TicketActivities
    from pulse.domain import agenda, records
    from pulse.domain.agenda import DueItem
    from pulse.domain.attachments import AttachmentResult
    from pulse.domain.commands import (
        Actor,
        AddAttachmentInput,
        AddCommentInput,
        AttachmentCommand,
        CommentCommand,
        CreateCommand,
        CreateTicketInput,
        DeleteAttachmentCommand,
        DeleteAttachmentInput,
        DeleteCommand,
        DeleteTicketInput,
        Delivery,
        DeliveryCommand,
        DueCommand,
        LoadTicketCommand,
        MergeInCommand,
        MergeIntoCommand,
        MergeIntoInput,
        MergeIntoRequest,
        MergeTicketsInput,
        PauseSlaInput,
        ResumeSlaInput,
        RulesChanged,
        SlaPauseCommand,
        TicketWorkflowInput,
        TicketWorkflowState,
        TicketWrite,
        UpdateCommand,
        UpdateTicketInput,
        command_id_for,
    )
    from pulse.domain.errors import Conflict, DomainError, NotFound, VersionConflict
    from pulse.domain.merge import merge_note
    from pulse.domain.tickets import AuthorType, TicketStatus, check_transition, format_ticket_number
    from pulse.failures import to_application_error
    from pulse import search_attributes as sa

# Workflows from this patch on also show their assignee, SLA due instants and escalation level
# as search attributes and their number and subject in the memo (issue 14).
DETAILS_PATCH = "search-attributes-details"
# Workflows from this patch on keep the agenda's timer across writes that leave its instant alone
# (a subject edit no longer cancels and restarts it: two history events and a timer task fewer).
KEEP_TIMER_PATCH = "agenda-timer-kept"
DB_WRITE_TIMEOUT = timedelta(seconds=30)
DB_WRITE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                             maximum_attempts=10)
# The workflow's own writes (due items, loads) wait out a database outage instead of failing.
SYSTEM_WRITE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
# Outbox consumers: retried with backoff for about a day, never holding up the ticket. A delivery
# holds its targets for a 2-minute lease (pulse.notifications.delivery), so its timeout is longer.
DELIVERY_TIMEOUT = timedelta(minutes=3)
# A delivery on a dead worker is retried this soon. A 10 s timeout was missed by heartbeats on an
# overloaded worker (bench/escalation.py): cancelled attempts, some of which had already sent.
DELIVERY_HEARTBEAT_TIMEOUT = timedelta(seconds=60)
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5),
                             maximum_attempts=300, non_retryable_error_types=["UnknownChannel"])
MERGE_REQUEST_TIMEOUT = timedelta(seconds=60)


@workflow.defn
class TicketWorkflow:
    @workflow.init
    def __init__(self, input: TicketWorkflowInput) -> None:
        self.state = input.state or TicketWorkflowState(account_id=input.account_id, ticket_id=input.ticket_id,
                                                        loaded=not input.resume)
        self._lock = asyncio.Lock()
        self._changed = False
        self._abandoned = False
        self._deliveries: set[asyncio.Task[None]] = set()
        # The search attributes the run shows: those it carries on, none in a run that loads its ticket.
        self._published: sa.Facts = self._facts() if input.state is not None or not input.resume else (None,) * 5
        # The details shown (sa.Details); None: not yet in this run (after continue-as-new, shown again once).
        self._published_details: sa.Details | None = None
        self._merging = 0
        # The timer of the earliest due item (KEEP_TIMER_PATCH) and the instant it is set for.
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None

    # -- the run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: TicketWorkflowInput) -> None:
        if not self.state.loaded:
            async with self._lock:
                await self._load()
        for delivery in list(self.state.pending):  # under way before continue-as-new
            self._start_delivery(delivery)
        while not self._finished():
            await self._next()
            self._changed = False
            if workflow.info().is_continue_as_new_suggested() and not self._finished():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._drop_timer()
                workflow.continue_as_new(TicketWorkflowInput(account_id=self.state.account_id,
                                                             ticket_id=self.state.ticket_id, state=self.state))
        self._drop_timer()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.state.pending)

    async def _next(self) -> None:
        """Re-compute the agenda if the rules changed; else sleep until a change arrives or the
        next item is due, then act on every item due. Nothing due → no timer at all."""
        if self._rules_stale():
            async with self._lock:
                if self._rules_stale() and not self._finished():
                    await self._refresh_agenda()
            return
        item = agenda.next_item(self.state.agenda, self.state.memory, self.state.cycle)
        woken = lambda: self._changed or self._finished() or self._rules_stale()  # noqa: E731
        if item is None:
            self._drop_timer()
            await workflow.wait_condition(woken)
            return
        remaining = item.at - workflow.now()
        if remaining > agenda.DUE_TOLERANCE:  # a zero timeout would raise: "already due" acts at once
            if workflow.patched(KEEP_TIMER_PATCH):
                timer = self._timer_for(item, remaining)
                await workflow.wait_condition(lambda: woken() or timer.done())
                if not timer.done():
                    return  # a change: the next turn keeps this timer unless the earliest instant moved
                self._timer, self._timer_at = None, None
            else:
                try:
                    await workflow.wait_condition(woken, timeout=remaining, timeout_summary=item.summary)
                    return
                except asyncio.TimeoutError:
                    pass
        async with self._lock:
            for due in agenda.due_items(self.state.agenda, self.state.memory, self.state.cycle, workflow.now()):
                if self._finished():
                    break
                await self._act_on(due)

    def _timer_for(self, item: DueItem, remaining: timedelta) -> asyncio.Task[None]:
        """The timer for the earliest due item: the one already running when it is set for the
        same instant, else a new one (the old one cancelled)."""
        if self._timer is None or self._timer_at != item.at or self._timer.done():
            self._drop_timer()
            self._timer = asyncio.create_task(workflow.sleep(remaining, summary=item.summary))
            self._timer_at = item.at
        return self._timer

    def _drop_timer(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer, self._timer_at = None, None

    async def _act_on(self, item: DueItem) -> None:
        cycle = self.state.cycle
        command = DueCommand(**self._envelope(f"due/{cycle}/{item.ident}"), item=item, cycle=cycle)
        try:
            await self._system_write(TicketActivities.act_on_due, command, f"{item.summary} for {self._label()}")
        except ApplicationError as error:  # not retryable (e.g. the row is gone): the loop goes on
            workflow.logger.warning("%s: could not act on %s: %s", self._label(), item.ident, error)
        self.state.memory = self.state.memory.remember(item, cycle)

    def _rules_stale(self) -> bool:
        return self.state.rules_wanted > self.state.rules_generation

    async def _refresh_agenda(self) -> None:
        """The account's rules changed (fan-out signal): re-read them with the ticket, once per generation."""
        wanted = self.state.rules_wanted
        outcome = await self._load_ticket(f"re-compute the agenda of {self._label()} (rules {wanted})")
        self.state.rules_generation = max(self.state.rules_generation, wanted)
        self.state.agenda_refreshes += 1
        if outcome.ticket is None:
            self.state.deleted = True

    async def _load(self) -> None:
        """A resumed run: the ticket as stored (its workflow had ended, or was missing)."""
        outcome = await self._load_ticket(f"load ticket {self.state.ticket_id}")
        self.state.loaded = True
        if outcome.ticket is None:
            self.state.deleted = True

    async def _load_ticket(self, summary: str) -> TicketWrite:
        outcome: TicketWrite = await workflow.execute_local_activity(
            TicketActivities.load_ticket,
            LoadTicketCommand(account_id=self.state.account_id, ticket_id=self.state.ticket_id, now=workflow.now()),
            start_to_close_timeout=DB_WRITE_TIMEOUT, retry_policy=SYSTEM_WRITE_RETRY, summary=summary,
        )
        self._take(outcome)
        return outcome

    @contextlib.asynccontextmanager
    async def _turn(self, *, creating: bool = False) -> AsyncIterator[None]:
        """A command's turn, one at a time, once the ticket is known: a resumed run loads it first,
        and a run that never recorded its create (its create was lost with a Temporal restart while
        the row committed) loads it before the first other command, so such a ticket keeps working."""
        await workflow.wait_condition(lambda: self.state.loaded)
        async with self._lock:
            if self.state.number is None and not self.state.deleted and not creating:
                await self._load()
            yield

    def _finished(self) -> bool:
        return self._abandoned or self.state.deleted or (self.state.loaded and self.state.status == TicketStatus.CLOSED)

    @workflow.query
    def current_state(self) -> TicketWorkflowState:
        return self.state

    @workflow.signal
    def rules_changed(self, input: RulesChanged) -> None:
        """The account's rules reached a new generation; a generation already seen changes nothing."""
        self.state.rules_wanted = max(self.state.rules_wanted, input.generation)

    # -- create ---------------------------------------------------------------------------------

    @workflow.update
    async def create(self, input: CreateTicketInput) -> records.Ticket:
        async with self._turn(creating=True):
            if self.state.number is None:
                self._published = sa.facts_at_create(input.number, input.ticket.status or TicketStatus.OPEN,
                                                     input.ticket.priority or "medium", input.ticket.assigned_to_team_id)
            try:
                outcome = await self._write(TicketActivities.create_ticket,
                                            CreateCommand(**self._envelope(), input=input),
                                            f"create {format_ticket_number(input.number)}")
            except ApplicationError:
                if self.state.number is None:
                    self._abandoned = True  # nothing was stored: this run has no ticket to keep
                raise
            return self._committed(outcome)

    # -- update ---------------------------------------------------------------------------------

    @workflow.update
    async def update(self, input: UpdateTicketInput) -> records.Ticket:
        async with self._turn():
            self._check(lambda: self._check_update(input))
            if self.state.status == TicketStatus.CLOSED:  # a repeated close of a closed ticket: no change
                return await self._current()
            fields = ", ".join(input.changes.names() + (["tags"] if input.tags else [])) or "nothing"
            outcome = await self._write(TicketActivities.update_ticket,
                                        UpdateCommand(**self._envelope(command_id=input.command_id), input=input),
                                        f"update {self._label()}: {fields}")
            return self._committed(outcome)

    @update.validator
    def validate_update(self, input: UpdateTicketInput) -> None:
        self._validate(lambda: self._check_update(input))

    def _check_update(self, input: UpdateTicketInput) -> None:
        status = input.changes.status
        if self.state.status == TicketStatus.CLOSED and set(input.changes.names()) <= {"status"} and not input.tags:
            self._check_exists()
            self._check_version(input.expected_version)
            if status is not None:
                check_transition(TicketStatus.CLOSED, status)
            return
        self._check_writable(input.expected_version)
        if status is not None:
            check_transition(self.state.status, status)

    # -- comments -------------------------------------------------------------------------------

    @workflow.update
    async def add_comment(self, input: AddCommentInput) -> records.CommentResult:
        """A comment; on a closed ticket only an internal note (the API enforces who may)."""
        async with self._turn():
            self._check(lambda: self._check_comment(input))
            kind = "internal note" if input.is_internal else f"{input.author_type.value} comment"
            outcome = await self._write(TicketActivities.add_comment,
                                        CommentCommand(**self._envelope(command_id=input.command_id), input=input),
                                        f"add {kind} to {self._label()}")
            ticket = self._committed(outcome)
            if outcome.comment is None:
                raise to_application_error(NotFound(f"ticket {self.state.ticket_id} not found"))
            return records.CommentResult(comment=outcome.comment, ticket=ticket)

    @add_comment.validator
    def validate_add_comment(self, input: AddCommentInput) -> None:
        self._validate(lambda: self._check_comment(input))

    def _check_comment(self, input: AddCommentInput) -> None:
        self._check_exists()
        if self.state.status == TicketStatus.CLOSED and not input.is_internal:
            raise Conflict("the ticket is closed; it takes internal notes only", code="ticket_closed")

    # -- attachments ----------------------------------------------------------------------------

    @workflow.update
    async def add_attachment(self, input: AddAttachmentInput) -> AttachmentResult:
        """An attachment (its content is stored already, by hash); closed tickets take none."""
        async with self._turn():
            self._check(lambda: self._check_writable(None))
            outcome = await self._write(TicketActivities.add_attachment,
                                        AttachmentCommand(**self._envelope(command_id=input.command_id), input=input),
                                        f"attach {input.attachment.file_name[:80]} to {self._label()}")
            ticket = self._committed(outcome)
            if outcome.attachment is None:
                raise to_application_error(NotFound(f"ticket {self.state.ticket_id} not found"))
            return AttachmentResult(attachment=outcome.attachment, ticket=ticket)

    @add_attachment.validator
    def validate_add_attachment(self, input: AddAttachmentInput) -> None:
        self._validate(lambda: self._check_writable(None))

    @workflow.update
    async def delete_attachment(self, input: DeleteAttachmentInput) -> AttachmentResult:
        """One attachment deleted (hidden, counted down, on the timeline); closed tickets are read-only."""
        async with self._turn():
            self._check(lambda: self._check_writable(None))
            outcome = await self._write(TicketActivities.delete_attachment,
                                        DeleteAttachmentCommand(**self._envelope(command_id=input.command_id),
                                                                input=input),
                                        f"delete attachment {input.attachment_id} of {self._label()}")
            ticket = self._committed(outcome)
            if outcome.attachment is None:
                raise to_application_error(NotFound(f"attachment {input.attachment_id} not found"))
            return AttachmentResult(attachment=outcome.attachment, ticket=ticket)

    @delete_attachment.validator
    def validate_delete_attachment(self, input: DeleteAttachmentInput) -> None:
        self._validate(lambda: self._check_writable(None))

    # -- SLA pause / resume -----------------------------------------------------------------------

    @workflow.update
    async def pause_sla(self, input: PauseSlaInput) -> records.Ticket:
        async with self._turn():
            self._check(self._check_sla_pausable)
            return await self._pause_or_resume(input.actor, True, input.reason, f"pause the SLA of {self._label()}")

    @pause_sla.validator
    def validate_pause_sla(self, input: PauseSlaInput) -> None:
        self._validate(self._check_sla_pausable)

    def _check_sla_pausable(self) -> None:
        self._check_writable(None)
        if not self.state.sla_running:
            raise Conflict("the SLA clock is not running (the ticket is resolved), so it cannot be paused",
                           code="sla_not_running")

    @workflow.update
    async def resume_sla(self, input: ResumeSlaInput) -> records.Ticket:
        async with self._turn():
            self._check(self._check_sla_resumable)
            return await self._pause_or_resume(input.actor, False, input.reason, f"resume the SLA of {self._label()}")

    @resume_sla.validator
    def validate_resume_sla(self, input: ResumeSlaInput) -> None:
        self._validate(self._check_sla_resumable)

    def _check_sla_resumable(self) -> None:
        self._check_writable(None)
        if not self.state.sla_running and not self.state.sla_paused_manually:
            raise Conflict("the ticket has no SLA clock", code="sla_not_running")
        if self.state.sla_paused_by_status and not self.state.sla_paused_manually:
            raise Conflict(
                f"the SLA is paused because the ticket is {self.state.status.value}; change the status to resume it",
                code="sla_paused_by_status",
            )

    async def _pause_or_resume(self, actor: Actor, pause: bool, reason: str | None, summary: str) -> records.Ticket:
        outcome = await self._write(TicketActivities.pause_or_resume_sla,
                                    SlaPauseCommand(**self._envelope(), actor=actor, pause=pause, reason=reason), summary)
        return self._committed(outcome)

    # -- merge ----------------------------------------------------------------------------------

    @workflow.update
    async def merge(self, input: MergeTicketsInput) -> records.MergeResult:
        """Merge other tickets into this one, one secondary at a time: the secondary's own workflow
        links and closes it (``merge_into``, sent through the gateway by an activity), then this
        ticket takes its comments and tags (one transaction). A failed secondary is reported and
        left as it was."""
        self._merging += 1  # from acceptance on: a merge into this ticket from a lower id gives way
        try:
            async with self._turn():
                self._check(lambda: self._check_writable(None))
                return await self._merge(input)
        finally:
            self._merging -= 1

    async def _merge(self, input: MergeTicketsInput) -> records.MergeResult:
        result = records.MergeResult()
        merged: list[records.Ticket] = []
        for secondary_id in input.secondary_ticket_ids:
            update_id = self._update_id()
            request = MergeIntoRequest(account_id=self.state.account_id, secondary_ticket_id=secondary_id,
                                       input=MergeIntoInput(
                                           actor=input.actor, primary_ticket_id=self.state.ticket_id,
                                           primary_number=self.state.number or 0,
                                           close=input.close_secondary_tickets,
                                           command_id=f"{workflow.info().workflow_id}/{update_id}/merge-into-{secondary_id}"))
            try:
                secondary = await workflow.execute_activity(
                    MergeActivities.merge_into_primary, request, start_to_close_timeout=MERGE_REQUEST_TIMEOUT,
                    retry_policy=DB_WRITE_RETRY, summary=f"merge ticket {secondary_id} into {self._label()}",
                )
                outcome = await self._write(
                    TicketActivities.merge_in,
                    MergeInCommand(**self._envelope(f"{update_id}/merge-in-{secondary_id}"), actor=input.actor,
                                   secondary=secondary, merge_comments=input.merge_comments,
                                   merge_attachments=input.merge_attachments),
                    f"take ticket {secondary_id}'s comments and attachments into {self._label()}")
            except (ActivityError, ApplicationError) as error:
                failure = error.cause if isinstance(error, ActivityError) else error
                message = getattr(failure, "message", str(error))
                code = getattr(failure, "type", None) or "merge_failed"
                result.errors.append(records.MergeError(ticket_id=secondary_id, error=message, code=code))
                continue
            result.primary = outcome.ticket
            merged.append(secondary)
            result.merged_ticket_ids.append(secondary_id)
            result.comments_merged += outcome.comments_merged
            result.attachments_merged += outcome.attachments_merged
            result.secondary_tickets_closed += secondary.status == TicketStatus.CLOSED
        if merged and input.add_merge_note:
            note = AddCommentInput(actor=input.actor, body=merge_note([(t.number, t.subject) for t in merged]),
                                   is_internal=True, author_type=AuthorType.SYSTEM)
            commented = await self._write(TicketActivities.add_comment,
                                          CommentCommand(**self._envelope(f"{self._update_id()}/merge-note"), input=note),
                                          f"merge note on {self._label()}")
            result.primary = commented.ticket
            result.merge_note = note.body
        return result

    @merge.validator
    def validate_merge(self, input: MergeTicketsInput) -> None:
        self._validate(lambda: self._check_writable(None))

    @workflow.update
    async def merge_into(self, input: MergeIntoInput) -> records.Ticket:
        """This ticket is merged into another (asked by the primary's merge)."""
        async with self._turn():
            self._check(self._check_exists)
            outcome = await self._write(TicketActivities.merge_into,
                                        MergeIntoCommand(**self._envelope(command_id=input.command_id), input=input),
                                        f"merge {self._label()} into {format_ticket_number(input.primary_number)}")
            return self._committed(outcome)

    @merge_into.validator
    def validate_merge_into(self, input: MergeIntoInput) -> None:
        self._validate(self._check_exists)
        if self._merging and input.primary_ticket_id < self.state.ticket_id:
            # Two tickets merging into each other: the one with the lower id gives way, so one of
            # the two merges completes and neither waits on the other.
            raise to_application_error(Conflict("this ticket is merging other tickets into itself right now",
                                                code="ticket_busy"))

    # -- delete ---------------------------------------------------------------------------------

    @workflow.update
    async def delete(self, input: DeleteTicketInput) -> records.Ticket:
        async with self._turn():
            self._check(lambda: self._check_deletable(input))
            outcome = await self._write(TicketActivities.delete_ticket,
                                        DeleteCommand(**self._envelope(command_id=input.command_id), input=input),
                                        f"delete {self._label()}")
            return self._committed(outcome)

    @delete.validator
    def validate_delete(self, input: DeleteTicketInput) -> None:
        self._validate(lambda: self._check_deletable(input))

    def _check_deletable(self, input: DeleteTicketInput) -> None:
        self._check_exists()
        self._check_version(input.expected_version)

    # -- checks ---------------------------------------------------------------------------------

    def _check_exists(self) -> None:
        if self.state.number is None or self.state.deleted:
            raise NotFound(f"ticket {self.state.ticket_id} not found")

    def _check_version(self, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != self.state.version:
            raise VersionConflict(
                f"ticket is at version {self.state.version}, not {expected_version}; reload and retry",
                details=[{"field": "version", "message": f"current version is {self.state.version}"}],
            )

    def _check_writable(self, expected_version: int | None) -> None:
        self._check_exists()
        if self.state.status == TicketStatus.CLOSED:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        self._check_version(expected_version)

    def _validate(self, check: Callable[[], None]) -> None:
        """In a validator: a failed check rejects the update before history. While the ticket is
        not known yet (a resumed run, or a create not recorded) the handler checks instead, once
        it has loaded the ticket."""
        if self.state.loaded and self.state.number is not None:
            self._check(check)

    def _check(self, check: Callable[[], None]) -> None:
        try:
            check()
        except DomainError as error:
            raise to_application_error(error) from None

    # -- writes ---------------------------------------------------------------------------------

    def _label(self) -> str:
        if self.state.number is None:
            return f"ticket {self.state.ticket_id}"
        return format_ticket_number(self.state.number)

    def _update_id(self) -> str:
        update = workflow.current_update_info()
        return update.id if update else "run"

    def _envelope(self, suffix: str | None = None, *, command_id: str | None = None) -> dict[str, Any]:
        """A command's envelope: its id is the caller's, else this update's (+ ``suffix``)."""
        if command_id is None:
            command_id = command_id_for(workflow.info().workflow_id, suffix or self._update_id())
        return {"command_id": command_id, "account_id": self.state.account_id, "ticket_id": self.state.ticket_id,
                "now": workflow.now()}

    async def _current(self) -> records.Ticket:
        outcome = await self._load_ticket(f"read {self._label()}")
        if outcome.ticket is None:
            raise to_application_error(NotFound(f"ticket {self.state.ticket_id} not found"))
        return outcome.ticket

    async def _write(self, activity: Callable[..., Awaitable[TicketWrite]], command: Any, summary: str) -> TicketWrite:
        """One write activity (local: one transaction, no extra round trip); its outcome taken over."""
        try:
            outcome: TicketWrite = await workflow.execute_local_activity(
                activity, command, start_to_close_timeout=DB_WRITE_TIMEOUT, retry_policy=DB_WRITE_RETRY, summary=summary,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True) from None
            raise ApplicationError(f"could not store the change: {error}", type="write_failed") from None
        self._take(outcome)
        return outcome

    async def _system_write(self, activity: Callable[..., Awaitable[TicketWrite]], command: Any,
                            summary: str) -> TicketWrite:
        try:
            outcome: TicketWrite = await workflow.execute_local_activity(
                activity, command, start_to_close_timeout=DB_WRITE_TIMEOUT, retry_policy=SYSTEM_WRITE_RETRY,
                summary=summary,
            )
        except ActivityError as error:
            cause = error.cause
            raise ApplicationError(getattr(cause, "message", str(error)), type="write_failed") from None
        self._take(outcome)
        return outcome

    def _take(self, outcome: TicketWrite) -> None:
        """Take over the committed ticket: the facts the validators need, the agenda, and the
        outbox deliveries to start; publish the changed search attributes (one upsert)."""
        self._changed = True
        ticket = outcome.ticket
        if ticket is not None and self._is_old_news(outcome, ticket):
            return  # a command applied before, answered from its stored outcome: the answer, not news
        for delivery in outcome.deliveries:
            self._start_delivery(delivery)
        if ticket is None:
            return
        state = self.state
        state.write_sequence = max(state.write_sequence, ticket.write_sequence)
        state.number, state.status, state.priority = ticket.number, ticket.status, ticket.priority
        state.team_id, state.sla_status, state.version = ticket.assigned_to_team_id, ticket.sla_status, ticket.version
        state.deleted = ticket.deleted_at is not None
        state.sla_running = outcome.sla_running
        state.sla_paused_by_status = outcome.sla_paused_by_status
        state.sla_paused_manually = outcome.sla_paused_manually
        state.agenda = outcome.agenda
        state.cycle = outcome.cycle
        state.memory = state.memory.in_cycle(outcome.cycle).only(outcome.agenda)
        state.rules_generation = max(state.rules_generation, outcome.rules_generation)
        self.state.rules_wanted = max(self.state.rules_wanted, state.rules_generation)
        facts = self._facts()
        changes = sa.updates(self._published, facts) if facts != self._published else []
        self._published = facts
        if workflow.patched(DETAILS_PATCH):
            details = sa.details_of(ticket)
            changes += sa.detail_updates(self._published_details, details)
            if self._published_details is None or details[4:] != self._published_details[4:]:
                workflow.upsert_memo(sa.memo_of(details))
            self._published_details = details
        if changes:
            workflow.upsert_search_attributes(changes)

    def _committed(self, outcome: TicketWrite) -> records.Ticket:
        """The ticket a write committed; a 404 (not a failed workflow task) when there is none."""
        if outcome.ticket is None:
            raise to_application_error(NotFound(f"ticket {self.state.ticket_id} not found"))
        return outcome.ticket

    def _is_old_news(self, outcome: TicketWrite, ticket: records.Ticket) -> bool:
        """An outcome older than what the workflow holds (a repeated command, or one retried after
        continue-as-new forgot its update id). A stored outcome newer than that is news: its write
        committed but this run never took it (the worker died first), so it is taken now."""
        if ticket.write_sequence < self.state.write_sequence:
            return True
        return outcome.replayed and ticket.write_sequence <= self.state.write_sequence

    def _facts(self) -> sa.Facts:
        state = self.state
        return (state.number, state.status, state.priority, state.team_id, state.sla_status)

    # -- the outbox's consumers -----------------------------------------------------------------

    def _start_delivery(self, delivery: Delivery) -> None:
        if delivery not in self.state.pending:
            self.state.pending.append(delivery)
        task = asyncio.create_task(self._deliver(delivery))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await workflow.execute_activity(
                OutboxActivities.deliver_event,
                DeliveryCommand(account_id=self.state.account_id, ticket_id=self.state.ticket_id, delivery=delivery),
                start_to_close_timeout=DELIVERY_TIMEOUT, heartbeat_timeout=DELIVERY_HEARTBEAT_TIMEOUT,
                retry_policy=DELIVERY_RETRY,
                summary=f"{delivery.event_type} → {delivery.consumer}",
            )
        except (ActivityError, FailureError) as error:
            workflow.logger.warning("%s: %s not delivered to %s: %s", self._label(), delivery.event_type,
                                    delivery.consumer, error)
        finally:
            if delivery in self.state.pending:
                self.state.pending.remove(delivery)
