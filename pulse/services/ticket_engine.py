"""One ticket write, one transaction: lock the row → apply the change (pure) → rules hook → SLA
clock → store the row, the ledger, timeline and outbox rows → remember the outcome by command id.

Only the ticket's workflow calls this (through ``pulse.activities.tickets``): it is the one writer
of a ticket's row. Idempotent by ``command_id``: a retried command answers the stored outcome.
Never commits: the activity owns the transaction.

Cost of a PATCH: claim check + lock (1 query each) + policy (1–2 queries) + ledger (1) + UPDATE +
ledger upsert + timeline/outbox INSERTs (2) + outcome INSERT; a create adds the number allocation
and the search document.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain import changes, escalation, pipeline, records, sla
from pulse.domain.agenda import DueItem
from pulse.domain.changes import REFERENCE_FIELDS, SEARCH_DOCUMENT_FIELDS, Actor, TicketEvent, check_custom_fields_size
from pulse.domain.attachments import Attachment, attachment_added, attachment_deleted
from pulse.domain.commands import (
    AttachmentCommand,
    CommentCommand,
    CreateCommand,
    DeleteAttachmentCommand,
    Delivery,
    DeleteCommand,
    DueCommand,
    LoadTicketCommand,
    MergeInCommand,
    MergeIntoCommand,
    SlaPauseCommand,
    TicketCommand,
    TicketWrite,
    UpdateCommand,
)
from pulse.domain.errors import NotFound, ValidationFailed
from pulse.domain.maverick_sync import conflict_events
from pulse.domain.conditions import all_match
from pulse.domain.merge import check_mergeable
from pulse.domain.tickets import AuthorType
from pulse.domain.outbox import consumers_for
from pulse.domain.tickets import format_ticket_number
from pulse.repositories.attachments import AttachmentRepository
from pulse.repositories.rotations import RotationRepository
from pulse.repositories.escalations import EscalationRuleRepository, escalation_row_values
from pulse.repositories.ticket_lists import TicketSearchIndex
from pulse.repositories.ticket_merges import TicketMergeRepository
from pulse.repositories.ticket_store import LockedTicket, TicketStore
from pulse.services.automation_hook import AutomationHook
from pulse.services.escalations import EscalationTargets
from pulse.services.sla import SlaPolicyResolver, policy_set_from_json

log = logging.getLogger("pulse.tickets")

class AlreadyApplied(Exception):
    """The command took effect before; its stored outcome is the answer."""

    def __init__(self, outcome: TicketWrite) -> None:
        super().__init__("already applied")
        self.outcome = outcome


class TicketEngine:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.store = TicketStore(session)

    async def _check_references(self, account_id: int, given: dict[str, Any]) -> None:
        references = {field: given[field] for field in REFERENCE_FIELDS if given.get(field) is not None}
        missing = await self.store.missing_references(account_id, references)
        if missing:
            raise ValidationFailed("unknown referenced record", details=[
                {"field": _api_name(field), "message": f"no {REFERENCE_FIELDS[field]} with id {references[field]} in this account"}
                for field in missing])

    async def _policy(self, account_id: int, ticket: records.Ticket, locked: LockedTicket) -> sla.SlaPolicy | None:
        """The policy for the ticket's facts (from the policies read with the lock; the first
        ticket of an account seeds the defaults); None (the clock keeps its targets) when a stored
        policy no longer validates — the change itself must not fail for it."""
        facts = _policy_facts(ticket)
        try:
            policy_set = policy_set_from_json(locked.policies_json, locked.calendars_json)
            if policy_set.has_priority_policies:
                return policy_set.for_ticket(facts)
            return await SlaPolicyResolver(self.session).for_ticket(account_id, facts)
        except (ValidationError, ValueError):
            log.exception("the SLA policies of account %s do not load; ticket %s keeps its clock", account_id,
                          ticket.id)
            return None

    async def _commit_write(self, command: TicketCommand, locked: LockedTicket, change: pipeline.Change,
                            *, actor: Actor, generation: int, clock: pipeline.ClockChange | None = None,
                            reload_policy: bool = False, comment: records.Comment | None = None,
                            search: Callable[[records.Ticket], Any] | None = None,
                            comments_merged: int = 0, attachments_merged: int = 0,
                            attachment: Attachment | None = None) -> TicketWrite:
        before, ledger = locked.ticket, locked.ledger
        rules = await self.store.rules(command.account_id, generation)
        clock = clock or pipeline.ClockChange()
        if reload_policy or (ledger is None and before is None):
            # The policy follows the ticket's facts after the change (re-read: it may have been edited).
            preview, _ = change(before)
            clock = clock.model_copy(update={"policy": await self._policy(command.account_id, preview, locked)})
        # The rules hook (automation) runs inside pipeline.run; a rule that picks from a rotation
        # makes it run again with that rotation's state, locked, and one that assigns a user or
        # team the account no longer has, again with that rule failing (AutomationHook).
        hook, context = AutomationHook(self.session, command.account_id), pipeline.RulesContext(comment=comment)

        def run() -> pipeline.PipelineResult:
            return pipeline.run(before, change, actor=actor, now=command.now, ledger=ledger, rules=rules, clock=clock,
                                context=context, policy_for=stored_policy_for(locked), timer=time.perf_counter)

        result = run()
        while True:
            if result.rotations_needed:
                context = context.model_copy(update={"rotations": await hook.rotations(result.rotations_needed)})
            elif missing := await hook.missing_references(result, context.missing_references):
                context = context.model_copy(update={"missing_references": context.missing_references | missing})
            else:
                break
            result = run()
        ticket = result.ticket.model_copy(update={"write_sequence": (before.write_sequence if before else 0) + 1})
        if before is None:
            await self.store.insert(ticket, changes.priority_rank(ticket))
        else:
            columns = changes.changed_columns(before, ticket)
            if "priority" in columns:
                columns["priority_rank"] = changes.priority_rank(ticket)
            await self.store.update(ticket.id, columns)
        if result.ledger is not None and result.ledger != ledger:
            await self.store.store_ledger(ticket.id, result.ledger)
        if search is not None:
            await search(ticket)
        events = await hook.store(ticket, result) if rules.automations else result.events
        event_ids = await self.store.add_events(ticket, events)
        await self.store.add_report_summary(before, ticket)
        deliveries = [Delivery(event_id=event_id, consumer=consumer, event_type=event.type)
                      for event_id, event in zip(event_ids, events) for consumer in consumers_for(event, ticket)]
        running, by_status, by_hand = pipeline.sla_flags(result.ledger, ticket.status)
        outcome = TicketWrite(ticket=ticket, comment=comment, deliveries=deliveries, agenda=result.agenda,
                              cycle=ticket.reopen_count, rules_generation=generation, sla_running=running,
                              sla_paused_by_status=by_status, sla_paused_manually=by_hand,
                              comments_merged=comments_merged, attachments_merged=attachments_merged,
                              attachment=attachment,
                              automation=[f"automation:{e.rule_id} {e.status}: "
                                          + ", ".join(a["type"] for a in e.actions_performed)
                                          for e in result.executions if e.status != "skipped"])
        await self.store.record_outcome(command.command_id, command.ticket_id, outcome, account_id=command.account_id,
                                        executions=result.executions)
        return outcome

    async def _locked(self, command: TicketCommand) -> tuple[LockedTicket, records.Ticket, int]:
        """The ticket locked for the write (with what the write reads); ``AlreadyApplied`` when
        this command took effect before (an activity retry)."""
        locked = await self.store.lock_for_write(command.account_id, command.ticket_id, command.command_id)
        if locked.outcome is not None:
            raise AlreadyApplied(locked.outcome)
        if locked.ticket is None:
            raise NotFound(f"ticket {command.ticket_id} not found")
        return locked, locked.ticket, locked.generation

    # -- the writes --------------------------------------------------------------------------------

    async def create(self, command: CreateCommand) -> TicketWrite:
        new = command.input.ticket
        account = await self.store.account_for_create(command.account_id, command.ticket_id)
        if account.exists:  # a create repeated in a new run (same ticket id): nothing to do
            return await self.load(LoadTicketCommand(account_id=command.account_id, ticket_id=command.ticket_id,
                                                     now=command.now))
        check_custom_fields_size(new.custom_fields)
        await self._check_references(command.account_id, new.given())
        new = await self._auto_assigned(command.account_id, new)
        number = command.input.number

        def create(_: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            return changes.create(command.ticket_id, command.account_id, number, new, command.input.actor, command.now)

        return await self._commit_write(command, account, create, actor=command.input.actor,
                                        generation=account.generation)

    async def _auto_assigned(self, account_id: int, new: changes.NewTicket) -> changes.NewTicket:
        """A new ticket of a type with auto-assignment, not assigned by its creator, goes to the
        next member of the type's rotation (the pick advances it in this transaction)."""
        if new.type_id is None or "assigned_to_user_id" in new.model_fields_set:
            return new
        rotation_id = await self.store.auto_assignment_rotation(account_id, new.type_id)
        if rotation_id is None:
            return new
        picked = await RotationRepository(self.session).pick_next(account_id, rotation_id)
        if picked is None:
            return new
        return changes.NewTicket.model_validate({**new.given(), "assigned_to_user_id": picked})

    async def update(self, command: UpdateCommand) -> TicketWrite:
        request = command.input
        locked, before, generation = await self._locked(command)
        changes.check_version(before, request.expected_version)
        changes.check_open(before)
        given = request.changes.given()
        check_custom_fields_size(given.get("custom_fields"))
        await self._check_references(command.account_id, given)

        def update(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            after, events = changes.update(ticket, request.changes, request.actor, command.now, tags=request.tags)
            return after, events + conflict_events(request.sync_conflicts, request.actor, command.now)

        search_index = TicketSearchIndex(self.session)

        async def refresh(ticket: records.Ticket) -> None:
            if any(getattr(ticket, f) != getattr(before, f) for f in SEARCH_DOCUMENT_FIELDS):
                await search_index.refresh(ticket.id)

        return await self._commit_write(command, locked, update, actor=request.actor, generation=generation,
                                        reload_policy=True, search=refresh)

    async def comment(self, command: CommentCommand) -> TicketWrite:
        request = command.input
        locked, before, generation = await self._locked(command)
        stored = await self.store.add_comment({
            "account_id": command.account_id, "ticket_id": command.ticket_id, "body": request.body,
            "is_internal": request.is_internal, "notify_customer": request.notify_customer and not request.is_internal,
            "author_type": request.author_type.value, "author_user_id": request.actor.user_id,
            "mentions": request.mentions, "created_at": command.now,
        })
        new = changes.NewComment(id=stored.id, body=request.body, is_internal=request.is_internal,
                                 notify_customer=stored.notify_customer, author_type=request.author_type,
                                 mentions=request.mentions)

        def comment(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return changes.comment(ticket, new, request.actor, command.now)

        search_index = TicketSearchIndex(self.session)
        return await self._commit_write(
            command, locked, comment, actor=request.actor, generation=generation, comment=stored,
            search=lambda ticket: search_index.append_comment(ticket.id, request.body, internal=request.is_internal))

    async def add_attachment(self, command: AttachmentCommand) -> TicketWrite:
        """An attachment whose content is stored already; one from Maverick (``external_id``) is
        added once per ticket, however often it is imported."""
        request, new = command.input, command.input.attachment
        locked, before, generation = await self._locked(command)
        changes.check_open(before)
        attachments = AttachmentRepository(self.session)
        if new.external_id is not None:
            known = await attachments.by_external_id(command.ticket_id, new.external_id)
            if known is not None:
                return await self._commit_write(command, locked, lambda ticket: (ticket, []),  # type: ignore[arg-type,return-value]
                                                actor=request.actor, generation=generation, attachment=known)
        stored = await attachments.insert({
            "account_id": command.account_id, "ticket_id": command.ticket_id, **new.model_dump(mode="json"),
            "created_by_user_id": request.actor.user_id, "created_at": command.now,
        })

        def attach(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return attachment_added(ticket, stored, request.actor, command.now)

        return await self._commit_write(command, locked, attach, actor=request.actor, generation=generation,
                                        attachment=stored)

    async def delete_attachment(self, command: DeleteAttachmentCommand) -> TicketWrite:
        """One attachment deleted: hidden from the list and the download, kept as a record (so a
        Maverick document it came from is not imported again); ``attachmentCount`` − 1 and an
        ``attachment_deleted`` entry on the timeline. Not pushed to Maverick (its contract has no
        document delete). Closed tickets are read-only."""
        request = command.input
        locked, before, generation = await self._locked(command)
        changes.check_open(before)
        attachments = AttachmentRepository(self.session)
        deleted = await attachments.mark_deleted(command.account_id, command.ticket_id, request.attachment_id,
                                                 command.now, request.actor.user_id)
        if deleted is None:
            raise NotFound(f"attachment {request.attachment_id} of ticket {command.ticket_id} not found")

        def delete(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return attachment_deleted(ticket, deleted, request.actor, command.now)

        return await self._commit_write(command, locked, delete, actor=request.actor, generation=generation,
                                        attachment=deleted)

    async def delete(self, command: DeleteCommand) -> TicketWrite:
        locked, before, generation = await self._locked(command)
        changes.check_version(before, command.input.expected_version)

        def delete(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return changes.delete(ticket, command.input.actor, command.now)

        return await self._commit_write(command, locked, delete, actor=command.input.actor, generation=generation)

    async def pause_or_resume(self, command: SlaPauseCommand) -> TicketWrite:
        locked, before, generation = await self._locked(command)
        changes.check_open(before)
        clock = pipeline.ClockChange(pause=command.pause, pause_reason=command.reason)
        return await self._commit_write(command, locked, lambda ticket: (ticket, []),  # type: ignore[arg-type,return-value]
                                        actor=command.actor, generation=generation, clock=clock)

    async def act_on_due(self, command: DueCommand) -> TicketWrite:
        locked, before, generation = await self._locked(command)
        if command.item.kind == escalation.ESCALATION_KIND:
            return await self._escalate(command, locked, before, generation)
        ticket, events, clock = pipeline.due(before, command.item, Actor.system())
        return await self._commit_write(command, locked, lambda _: (ticket, list(events)),
                                        actor=Actor.system(), generation=generation, clock=clock)

    async def _escalate(self, command: DueCommand, locked: LockedTicket, before: records.Ticket,
                        generation: int) -> TicketWrite:
        """An escalation rule's threshold was reached: if the rule still applies and its conditions
        hold now, resolve its target, change the ticket (counters, level, reassignment), add the
        internal note, record the history row, and raise ``escalated`` (which notifies) — one
        transaction. Otherwise the item is spent for this cycle and nothing changes."""
        rules = await self.store.rules(command.account_id, generation)
        rule = rules.escalation_rule(int(command.item.key.split("@")[0]))
        history = EscalationRuleRepository(self.session)
        if (rule is None or not rule.applies_to(before) or not escalation.is_due(rule, before, locked.ledger, command.now)
                or not all_match(list(rule.conditions), before)
                or await history.escalated_in_cycle(before.id, rule.id, command.cycle)):
            # Spent for this cycle (disabled, no longer due as the rule now reads, conditions not
            # met at the threshold, or escalated already): nothing changes.
            return await self._commit_write(command, locked, lambda ticket: (ticket, []),  # type: ignore[arg-type,return-value]
                                            actor=Actor.system(), generation=generation)
        target = await EscalationTargets(self.session).resolve(command.account_id, before, rule)
        after, events = escalation.escalate(before, rule, target, command.item.at, command.now)
        comment = None
        if rule.add_internal_note:
            note = escalation.render_note(rule.internal_note_template, after, rule, target, command.item.at)
            comment = await self.store.add_comment({
                "account_id": command.account_id, "ticket_id": command.ticket_id, "body": note, "is_internal": True,
                "notify_customer": False, "author_type": "system", "author_user_id": None, "mentions": [],
                "created_at": command.now,
            })
            new = changes.NewComment(id=comment.id, body=note, is_internal=True, author_type=AuthorType.SYSTEM)
            after, noted = changes.comment(after, new, events[0].actor, command.now)
            after.version -= 1  # one change: the escalation and its note
            events += noted
        reassigned = any(event.type == "field_changed" for event in events)
        await history.record(escalation_row_values(
            command.account_id, command.ticket_id, rule, command.cycle, command.item.at, command.now,
            target.user_ids, target.team_id, reassigned))
        search_index = TicketSearchIndex(self.session)

        async def index_note(ticket: records.Ticket) -> None:
            if comment is not None:
                await search_index.append_comment(ticket.id, comment.body, internal=True)

        return await self._commit_write(command, locked, lambda _: (after, list(events)), actor=events[0].actor,
                                        generation=generation, comment=comment, search=index_note,
                                        reload_policy=reassigned)  # a new team may choose another policy

    async def merge_into(self, command: MergeIntoCommand) -> TicketWrite:
        """This (secondary) ticket is merged into the primary: linked, and closed when asked."""
        request = command.input
        locked, before, generation = await self._locked(command)
        if before.merged_into_ticket_id == request.primary_ticket_id:  # done by an earlier attempt of this merge
            return await self.load(LoadTicketCommand(account_id=command.account_id, ticket_id=command.ticket_id,
                                                     now=command.now))
        check_mergeable(before, as_primary=False)

        def merged(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return changes.merged_into(ticket, request.primary_ticket_id, format_ticket_number(request.primary_number),
                                       request.actor, command.now, close=request.close)

        return await self._commit_write(command, locked, merged, actor=request.actor, generation=generation)

    async def merge_in(self, command: MergeInCommand) -> TicketWrite:
        """The primary's side: the secondary's comments copied (in time order), its attachments
        copied (each content once), tags united. The copies raise no ``comment_added`` or
        ``attachment_added`` event, so nothing of them is pushed to Maverick or notified: they
        were said or sent once already, on the secondary."""
        locked, before, generation = await self._locked(command)
        check_mergeable(before, as_primary=True)
        copied = public_agent = internal = attachments_copied = 0
        merges = TicketMergeRepository(self.session)
        if command.merge_comments:
            counts = await merges.copy_comments(command.secondary.id, before.id)
            copied, public_agent, internal = counts.total, counts.public_agent, counts.internal
        if command.merge_attachments:
            attachments_copied = await merges.copy_attachments(command.secondary.id, before.id)

        def merged_in(ticket: records.Ticket | None) -> tuple[records.Ticket, list[TicketEvent]]:
            assert ticket is not None
            return changes.merged_in(ticket, command.secondary, copied, public_agent, internal, command.actor,
                                     command.now, attachments_copied=attachments_copied)

        search_index = TicketSearchIndex(self.session)

        async def refresh(ticket: records.Ticket) -> None:
            if copied:
                await search_index.refresh(ticket.id)

        return await self._commit_write(command, locked, merged_in, actor=command.actor, generation=generation,
                                        search=refresh, comments_merged=copied,
                                        attachments_merged=attachments_copied)

    async def load(self, command: LoadTicketCommand) -> TicketWrite:
        """The ticket as stored, with its agenda (a resumed run's start, or a re-computed agenda);
        ``ticket`` None when it does not exist (or is deleted)."""
        locked = await self.store.lock_for_write(command.account_id, command.ticket_id, "")
        ticket, generation, ledger = locked.ticket, locked.generation, locked.ledger
        if ticket is None:
            return TicketWrite(rules_generation=generation)
        rules = await self.store.rules(command.account_id, generation)
        running, by_status, by_hand = pipeline.sla_flags(ledger, ticket.status)
        agenda: list[DueItem] = pipeline.agenda_of_ticket(ticket, ledger, rules)
        return TicketWrite(ticket=ticket, agenda=agenda, cycle=ticket.reopen_count, rules_generation=generation,
                           sla_running=running, sla_paused_by_status=by_status, sla_paused_manually=by_hand)


def _policy_facts(ticket: records.Ticket) -> sla.TicketFacts:
    return sla.TicketFacts(priority=ticket.priority, tags=ticket.tags, type_id=ticket.type_id,
                           category_id=ticket.category_id, team_id=ticket.assigned_to_team_id)


def stored_policy_for(locked: LockedTicket) -> pipeline.PolicyFor:
    """The policy for a ticket as automation rules left it, from the policies read with the lock
    (None: keep the clock's policy — none stored yet, or they no longer validate)."""
    def policy_for(ticket: records.Ticket) -> sla.SlaPolicy | None:
        try:
            policy_set = policy_set_from_json(locked.policies_json, locked.calendars_json)
            return policy_set.for_ticket(_policy_facts(ticket)) if policy_set.has_priority_policies else None
        except (ValidationError, ValueError):
            return None
    return policy_for


def _api_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)

