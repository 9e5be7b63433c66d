"""TicketWorkflow: one long-lived workflow per ticket (``ticket-<accountId>-<ticketId>``).

Every mutation of a ticket is an update: its validator rejects invalid requests before anything
reaches history, its handler applies the change in one local activity (one database
transaction) and answers with the committed ticket. The run loop sleeps until the next instant
something is due (SLA thresholds, escalation levels, time-based rules: ``_next_due``), and
re-computes whenever a change arrives. The workflow ends when the ticket is closed or deleted.

The SLA clock (``pulse.domain.sla``) lives in ``state.sla``. A create, update or comment sends it
with the write (``SlaFollow``), and the same local activity and transaction moves it after the
change and stores what changed (the policy is reloaded at create and at every update, so a
priority change or an edited policy re-targets the running metrics; status changes pause, stop or
reopen it; the first public agent comment stops first response). When a threshold's timer fires,
or on ``pause_sla``/``resume_sla``, the workflow moves it itself and ``_store_sla`` writes it (one
local activity). Every write upserts the ``SlaStatus`` search attribute. While paused there is no
timer at all.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pulse.domain import records, sla
    from pulse.domain.commands import (
        Actor,
        AddCommentCommand,
        AddCommentInput,
        CreateTicketCommand,
        CreateTicketInput,
        DeleteTicketCommand,
        DeleteTicketInput,
        MergeTicketCommand,
        MergeTicketInput,
        MergeTicketsInput,
        PauseSlaInput,
        RecordSlaCommand,
        ResumeSlaInput,
        SlaFollow,
        SyncSlaCommand,
        SyncSlaResult,
        TicketWorkflowInput,
        TicketWorkflowState,
        TicketWrite,
        UpdateTicketCommand,
        UpdateTicketInput,
        command_id_for,
        facts_of,
    )
    from pulse.domain.errors import Conflict, DomainError, NotFound, VersionConflict
    from pulse.domain.merge import merge_note
    from pulse.domain.tickets import AuthorType, TicketStatus, check_transition, format_ticket_number, workflow_id_for
    from pulse.failures import to_application_error
    from pulse.workflows import search_attributes as sa

DB_WRITE_TIMEOUT = timedelta(seconds=30)
DB_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=10,
)
# Patch id: since this change a create, update or comment moves the SLA clock in its own
# transaction (one local activity, ``SlaFollow``) instead of a second one (``sync_sla``).
SLA_IN_WRITE_TRANSACTION = "sla-in-write-transaction"
# The clock's own writes wait out a database outage instead of failing the ticket.
SLA_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=10),
)


@workflow.defn
class TicketWorkflow:
    @workflow.init
    def __init__(self, input: TicketWorkflowInput) -> None:
        self.state = input.state or TicketWorkflowState(account_id=input.account_id, ticket_id=input.ticket_id)
        self._lock = asyncio.Lock()
        self._changed = False
        self._abandoned = False
        self._stuck_due: datetime | None = None  # a due instant whose tick changed nothing (no hot loop)

    # -- the run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: TicketWorkflowInput) -> None:
        while not self._finished():
            await self._wait_for_change_or_due()
            self._changed = False
            if workflow.info().is_continue_as_new_suggested() and not self._finished():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    TicketWorkflowInput(account_id=self.state.account_id, ticket_id=self.state.ticket_id, state=self.state)
                )
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _wait_for_change_or_due(self) -> None:
        """Sleep until a change arrives or the next instant something is due (then act on it).
        Nothing due (paused, stopped, all breached) → no timer at all."""
        due = self._next_due()
        if due is None:
            await workflow.wait_condition(lambda: self._changed or self._finished())
            return
        instant, summary = due
        remaining = instant - workflow.now()
        if instant == self._stuck_due:
            remaining = max(remaining, timedelta(seconds=1))
        if remaining > sla.DUE_TOLERANCE:  # a zero timeout would raise: "already due" acts at once
            try:
                await workflow.wait_condition(lambda: self._changed or self._finished(), timeout=remaining,
                                              timeout_summary=summary)
                return
            except asyncio.TimeoutError:
                pass
        async with self._lock:
            if not self._finished():
                await self._act_on_due(instant, summary)

    def _next_due(self) -> tuple[datetime, str] | None:
        """The next instant something is due, and what (the timer's summary). Today: the SLA
        thresholds. Escalation levels and time-based automation rules add their candidates here
        (``sla.instant_at_percent`` gives "85 % of resolution") and act in ``_act_on_due``."""
        return sla.next_due(self.state.sla, workflow.now())

    async def _act_on_due(self, instant: datetime, summary: str) -> None:
        """A due instant was reached: move the SLA clock to it (at-risk/breach transitions are
        stored with their exact instants, whatever the timer's own lateness)."""
        if self.state.sla is None:
            return
        ledger, events = sla.tick(self.state.sla, max(workflow.now(), instant))
        self._stuck_due = instant if ledger == self.state.sla else None
        self.state.sla = ledger
        try:
            await self._store_sla(events, Actor.system(), f"{summary} for {self._label()}")
        except ApplicationError as error:  # not retryable (e.g. the row is gone): keep the clock going
            workflow.logger.warning("could not store the SLA state of %s: %s", self._label(), error)

    def _finished(self) -> bool:
        return self._abandoned or self.state.deleted or self.state.status == TicketStatus.CLOSED

    @workflow.query
    def current_state(self) -> TicketWorkflowState:
        return self.state

    # -- create ---------------------------------------------------------------------------------

    @workflow.update
    async def create(self, input: CreateTicketInput) -> records.Ticket:
        async with self._lock:
            try:
                written = await self._write_following_sla(
                    "create_ticket", CreateTicketCommand(**self._envelope(), payload=input),
                    f"create ticket {self.state.ticket_id}", actor=input.actor, status_before=None,
                    follow=self.state.sla is None,  # a repeated create (same ticket): the clock runs already
                )
            except ApplicationError:
                if self.state.number is None:
                    self._abandoned = True  # nothing was stored: this run has no ticket to keep
                raise
            return written.ticket

    # -- update ---------------------------------------------------------------------------------

    @workflow.update
    async def update(self, input: UpdateTicketInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(lambda: self._check_update(input))
            fields = ", ".join(sorted({*input.changes, *(["tags"] if input.add_tags or input.remove_tags else [])}))
            fields = fields or "nothing"
            written = await self._write_following_sla(
                "update_ticket", UpdateTicketCommand(**self._envelope(), payload=input),
                f"update {self._label()}: {fields}", actor=input.actor, status_before=self.state.status,
            )
            return written.ticket

    @update.validator
    def validate_update(self, input: UpdateTicketInput) -> None:
        self._reject_unless(lambda: self._check_update(input))

    def _check_update(self, input: UpdateTicketInput) -> None:
        self._check_writable(input.expected_version)
        if "status" in input.changes:
            check_transition(self.state.status, TicketStatus(input.changes["status"]))

    # -- comments -------------------------------------------------------------------------------

    @workflow.update
    async def add_comment(self, input: AddCommentInput) -> records.CommentResult:
        async with self._lock:
            self._reject_unless(self._check_exists)
            kind = "internal note" if input.is_internal else f"{input.author_type.value} comment"
            written = await self._write_following_sla(
                "add_comment", AddCommentCommand(**self._envelope(), payload=input),
                f"add {kind} to {self._label()}", actor=input.actor, status_before=self.state.status,
                reload_policy=False,
            )
            assert written.comment is not None
            return records.CommentResult(comment=written.comment, ticket=written.ticket)

    @add_comment.validator
    def validate_add_comment(self, input: AddCommentInput) -> None:
        self._reject_unless(self._check_exists)

    # -- SLA pause / resume -----------------------------------------------------------------------

    @workflow.update
    async def pause_sla(self, input: PauseSlaInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(self._check_sla_pausable)
            assert self.state.sla is not None
            self.state.sla, events = sla.pause(self.state.sla, workflow.now(), input.reason)
            return await self._store_sla(events, input.actor, f"pause the SLA of {self._label()}", always=True)

    @pause_sla.validator
    def validate_pause_sla(self, input: PauseSlaInput) -> None:
        self._reject_unless(self._check_sla_pausable)

    def _check_sla_pausable(self) -> None:
        self._check_writable(None)
        if not sla.can_pause(self.state.sla):
            raise Conflict("the SLA clock is not running (the ticket is resolved), so it cannot be paused",
                           code="sla_not_running")

    @workflow.update
    async def resume_sla(self, input: ResumeSlaInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(self._check_sla_resumable)
            assert self.state.sla is not None
            self.state.sla, events = sla.resume(self.state.sla, workflow.now())
            return await self._store_sla(events, input.actor, f"resume the SLA of {self._label()}", always=True)

    @resume_sla.validator
    def validate_resume_sla(self, input: ResumeSlaInput) -> None:
        self._reject_unless(self._check_sla_resumable)

    def _check_sla_resumable(self) -> None:
        self._check_writable(None)
        ledger = self.state.sla
        if ledger is None:
            raise Conflict("the ticket has no SLA clock", code="sla_not_running")
        if ledger.paused_by_status and not ledger.paused_manually:
            raise Conflict(
                f"the SLA is paused because the ticket is {self.state.status.value}; change the status to resume it",
                code="sla_paused_by_status",
            )

    # -- merge ----------------------------------------------------------------------------------

    @workflow.update
    async def merge(self, input: MergeTicketsInput) -> records.MergeResult:
        """Merge other tickets into this one (see ``pulse.services.ticket_merge``): one
        transaction per secondary; a failed one is reported and left untouched. Each merged
        secondary's workflow is then signalled (durably) so it follows its close and ends."""
        async with self._lock:
            self._reject_unless(lambda: self._check_writable(None))
            result = records.MergeResult()
            merged: list[records.Ticket] = []
            for secondary_id in input.secondary_ticket_ids:
                envelope = self._envelope()
                envelope["command_id"] += f"/merge-{secondary_id}"
                payload = MergeTicketInput(actor=input.actor, secondary_ticket_id=secondary_id,
                                           merge_comments=input.merge_comments,
                                           close_secondary=input.close_secondary_tickets)
                try:
                    outcome = await self._write("merge_ticket", MergeTicketCommand(**envelope, payload=payload),
                                                records.MergeOutcome, f"merge ticket {secondary_id} into {self._label()}")
                except ApplicationError as error:
                    result.errors.append(records.MergeError(ticket_id=secondary_id, error=error.message,
                                                            code=error.type or "merge_failed"))
                    continue
                self._apply(outcome.primary)
                result.primary = outcome.primary
                merged.append(outcome.secondary)
                result.merged_ticket_ids.append(secondary_id)
                result.comments_merged += outcome.comments_merged
                result.secondary_tickets_closed += outcome.secondary.status == TicketStatus.CLOSED
                secondary = workflow.get_external_workflow_handle(workflow_id_for(self.state.account_id, secondary_id))
                try:
                    await secondary.signal(TicketWorkflow.merged_into, outcome.secondary)
                except FailureError as error:  # its workflow has ended: nothing to follow
                    workflow.logger.info("ticket %s has no running workflow to tell about the merge: %s",
                                         secondary_id, error)
            if merged and input.add_merge_note:
                envelope = self._envelope()
                envelope["command_id"] += "/merge-note"
                note = AddCommentInput(actor=input.actor, body=merge_note([(t.number, t.subject) for t in merged]),
                                       is_internal=True, author_type=AuthorType.SYSTEM)
                commented = await self._write("add_comment", AddCommentCommand(**envelope, payload=note),
                                              TicketWrite, f"merge note on {self._label()}")
                self._apply(commented.ticket)
                result.primary = commented.ticket
                result.merge_note = note.body
            return result

    @merge.validator
    def validate_merge(self, input: MergeTicketsInput) -> None:
        self._reject_unless(lambda: self._check_writable(None))

    @workflow.signal
    async def merged_into(self, ticket: records.Ticket) -> None:
        """The primary ticket's workflow merged this ticket (``mergedIntoTicketId`` set, usually
        closed) in one transaction: take the stored ticket over and follow the close like any
        other — the SLA clock stops, the workflow ends."""
        async with self._lock:
            if ticket.version <= self.state.version:
                return
            status_before = self.state.status
            self._apply(ticket)
            await self._follow_with_sla(ticket, status_before, Actor.system(), reload_policy=False)

    # -- delete ---------------------------------------------------------------------------------

    @workflow.update
    async def delete(self, input: DeleteTicketInput) -> records.Ticket:
        async with self._lock:
            self._reject_unless(self._check_exists)
            ticket = await self._write(
                "delete_ticket",
                DeleteTicketCommand(**self._envelope(), payload=input),
                records.Ticket,
                f"delete {self._label()}",
            )
            self.state.deleted = True
            self._apply(ticket)
            return ticket

    @delete.validator
    def validate_delete(self, input: DeleteTicketInput) -> None:
        self._reject_unless(lambda: self._check_writable(input.expected_version, allow_closed=True))

    # -- helpers --------------------------------------------------------------------------------

    def _label(self) -> str:
        if self.state.number is None:
            return f"ticket {self.state.ticket_id}"
        return format_ticket_number(self.state.number)

    def _envelope(self) -> dict[str, Any]:
        update = workflow.current_update_info()
        update_id = update.id if update else "run"
        return {
            "command_id": command_id_for(workflow.info().workflow_id, update_id),
            "account_id": self.state.account_id,
            "ticket_id": self.state.ticket_id,
            "now": workflow.now(),
        }

    def _check_exists(self) -> None:
        if self.state.number is None or self.state.deleted:
            raise NotFound(f"ticket {self.state.ticket_id} not found")

    def _check_writable(self, expected_version: int | None, *, allow_closed: bool = False) -> None:
        self._check_exists()
        if self.state.status == TicketStatus.CLOSED and not allow_closed:
            raise Conflict("the ticket is closed; closed tickets are read-only", code="ticket_closed")
        if expected_version is not None and expected_version != self.state.version:
            raise VersionConflict(
                f"ticket is at version {self.state.version}, not {expected_version}; reload and retry",
                details=[{"field": "version", "message": f"current version is {self.state.version}"}],
            )

    @staticmethod
    def _reject_unless(check: Any) -> None:
        """Run a domain check in a validator; a failure rejects the update before history."""
        try:
            check()
        except DomainError as error:
            raise to_application_error(error) from None

    async def _write(self, activity: str, command: Any, result_type: type[Any], summary: str) -> Any:
        try:
            return await workflow.execute_local_activity(
                activity,
                command,
                result_type=result_type,
                start_to_close_timeout=DB_WRITE_TIMEOUT,
                retry_policy=DB_WRITE_RETRY,
                summary=summary,
            )
        except DomainError as error:
            raise to_application_error(error) from None
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(
                    cause.message, *cause.details, type=cause.type, non_retryable=True
                ) from None
            raise ApplicationError(f"could not store the change: {error}", type="write_failed") from None

    # -- the SLA clock ------------------------------------------------------------------------------

    async def _write_following_sla(self, activity: str, command: CreateTicketCommand | UpdateTicketCommand |
                                   AddCommentCommand, summary: str, *, actor: Actor,
                                   status_before: TicketStatus | None, reload_policy: bool = True,
                                   follow: bool = True) -> TicketWrite:
        """A write, and the SLA clock following it in the same transaction (one local activity):
        the policy is reloaded at create and at every update (so priority changes and edited
        policies re-target the clock), the status is followed, the first public agent reply stops
        first response. ``status_before`` None: the written status (a create)."""
        if workflow.patched(SLA_IN_WRITE_TRANSACTION):
            if follow and not self.state.deleted:
                self.state.sla_writes += 1
                command.sla = SlaFollow(command_id=f"{workflow.info().workflow_id}/sla-{self.state.sla_writes}",
                                        ledger=self.state.sla, reload_policy=reload_policy,
                                        stored=self.state.sla_stored, status_before=status_before)
            written: TicketWrite = await self._write(activity, command, TicketWrite, summary)
            if written.ticket.version < self.state.version:
                # A command already applied in an earlier run (continue-as-new forgets update
                # ids), answered from its stored outcome: the answer for the caller, not news.
                return written
            if written.sla is not None:
                self.state.sla = written.sla.ledger
            self._apply(written.ticket)
            if written.sla is not None:
                await self._on_sla_events(written.sla.events)
            return written
        # Runs from before the patch: the write, then the clock in its own local activity. Such a
        # run can still take new updates after a deploy, whose activity answers in the new shape.
        changed_at = workflow.now()  # the write's instant
        result = TicketWrite.from_any(await self._write(activity, command, dict, summary))
        ticket, comment = result.ticket, result.comment
        self._apply(ticket)
        if follow:
            ticket = await self._follow_with_sla(ticket, status_before or ticket.status, actor,
                                                 reload_policy=reload_policy,
                                                 at=ticket.created_at if status_before is None else changed_at)
        return TicketWrite(ticket=ticket, comment=comment)

    async def _follow_with_sla(self, ticket: records.Ticket, status_before: TicketStatus, actor: Actor, *,
                               reload_policy: bool, at: datetime | None = None) -> records.Ticket:
        """Move the clock after a change committed at ``at`` (the instant the write stored, taken
        before it: the workflow's clock moves on while local activities run) and store what
        changed. The policy is reloaded at create and at every update (one local activity,
        ``sync_sla``: lookup + clock + write), so priority changes and edited policies re-target
        the clock there; the status is followed; the first public agent reply stops first
        response. Without a reload the workflow moves the clock itself and writes only if
        something changed. If it cannot be done, the committed change stands and the clock
        catches up at the next change."""
        if self.state.deleted:
            return ticket
        now = at or workflow.now()
        if not reload_policy and self.state.sla is not None:
            self.state.sla, events = sla.follow(
                self.state.sla, policy=None, status_before=status_before, status=ticket.status,
                first_responded_at=ticket.first_responded_at, created_at=ticket.created_at, now=now,
            )
            stored = await self._store_sla(events, actor, f"update the SLA of {self._label()}", ticket=ticket)
            return stored or ticket
        self.state.sla_writes += 1
        facts = facts_of(ticket)
        command = SyncSlaCommand(
            command_id=f"{workflow.info().workflow_id}/sla-{self.state.sla_writes}",
            account_id=self.state.account_id,
            ticket_id=self.state.ticket_id,
            now=workflow.now(),
            actor=actor,
            ledger=self.state.sla,
            reload_policy=reload_policy,
            facts=facts,
            status_before=status_before,
            status=ticket.status,
            first_responded_at=ticket.first_responded_at,
            created_at=ticket.created_at,
            changed_at=now,
            stored=self.state.sla_stored,
        )
        try:
            result = await workflow.execute_local_activity(
                "sync_sla", command, result_type=SyncSlaResult, start_to_close_timeout=DB_WRITE_TIMEOUT,
                retry_policy=DB_WRITE_RETRY, summary=f"follow with the SLA clock of {self._label()}",
            )
        except ActivityError as error:
            workflow.logger.warning("SLA clock of %s not moved (next change catches up): %s", self._label(), error)
            return ticket
        self.state.sla = result.ledger
        if result.ticket is None:
            return ticket
        self._apply(result.ticket)
        await self._on_sla_events(result.events)
        return result.ticket

    async def _store_sla(self, events: list[sla.SlaEvent], actor: Actor, summary: str, *,
                         ticket: records.Ticket | None = None, always: bool = False) -> records.Ticket | None:
        """Write the clock's state (SLA fields, timeline, ``ticket_events``) when it differs from
        what the ticket shows, upsert ``SlaStatus``, and hand the events to ``_on_sla_events``."""
        snapshot = sla.snapshot(self.state.sla)
        if not always and not events and snapshot == self.state.sla_stored:
            return ticket
        self.state.sla_writes += 1
        try:
            stored = await workflow.execute_local_activity(
                "record_sla",
                RecordSlaCommand(
                    command_id=f"{workflow.info().workflow_id}/sla-{self.state.sla_writes}",
                    account_id=self.state.account_id,
                    ticket_id=self.state.ticket_id,
                    now=workflow.now(),
                    actor=actor,
                    snapshot=snapshot,
                    events=events,
                    status_before=self.state.sla_stored.sla_status if self.state.sla_stored else None,
                ),
                result_type=records.Ticket,
                start_to_close_timeout=DB_WRITE_TIMEOUT,
                retry_policy=SLA_WRITE_RETRY,
                summary=summary,
            )
        except ActivityError as error:  # as _write: the domain error for the API, not a failed workflow
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True) from None
            raise ApplicationError(f"could not store the SLA state: {error}", type="write_failed") from None
        self._apply(stored)
        await self._on_sla_events(events)
        return stored

    async def _on_sla_events(self, events: list[sla.SlaEvent]) -> None:
        """The workflow-side hook for SLA events (``sla_at_risk``, ``sla_breached``, ``sla_paused`` …).

        By the time it runs, each event is stored in the ``ticket_events`` outbox (and the
        timeline) in the same transaction as the ticket's SLA fields. Automation rules with the
        ``sla_at_risk``/``sla_breached`` triggers and escalation plug in here (or read the outbox);
        time-based escalation levels join ``_wait_for_change_or_due`` through ``sla.instant_at_percent``.
        """
        for event in events:
            if event.type in ("sla_at_risk", "sla_breached"):
                workflow.logger.info("%s: %s %s at %s", self._label(), event.type,
                                     event.metric.value if event.metric else "", event.occurred_at.isoformat())

    def _apply(self, ticket: records.Ticket) -> None:
        """Take over the committed ticket's facts and publish the changed ones as search attributes
        (one upsert; two, SlaStatus first, in runs from before ``SLA_IN_WRITE_TRANSACTION``)."""
        before = (self.state.status, self.state.priority, self.state.team_id, self.state.number)
        sla_status_before = self.state.sla_stored.sla_status if self.state.sla_stored else None
        self.state.sla_stored = sla.stored_snapshot(ticket)
        self.state.number = ticket.number
        self.state.status = ticket.status
        self.state.priority = ticket.priority
        self.state.team_id = ticket.assigned_to_team_id
        self.state.version = ticket.version
        self._changed = True
        sla_updates = []
        if ticket.sla_status is not None and ticket.sla_status != sla_status_before:
            sla_updates = [sa.SLA_STATUS.value_set(str(ticket.sla_status))]
        fact_updates = []
        if before != (self.state.status, self.state.priority, self.state.team_id, self.state.number):
            fact_updates = [
                sa.TICKET_NUMBER.value_set(format_ticket_number(ticket.number)),
                sa.TICKET_STATUS.value_set(ticket.status.value),
                sa.TICKET_PRIORITY.value_set(ticket.priority.value),
                sa.TICKET_TEAM.value_set(str(ticket.assigned_to_team_id))
                if ticket.assigned_to_team_id is not None
                else sa.TICKET_TEAM.value_unset(),
            ]
        if workflow.patched(SLA_IN_WRITE_TRANSACTION):
            updates = [*sla_updates, *fact_updates]
            if updates:
                workflow.upsert_search_attributes(updates)
            return
        for updates in (sla_updates, fact_updates):
            if updates:
                workflow.upsert_search_attributes(updates)
