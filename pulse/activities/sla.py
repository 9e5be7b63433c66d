"""SLA activities, run as local activities by the ticket workflow: following a committed change
with the clock (policy lookup + transition + write, one transaction), and storing the clock's state
when a threshold is reached or the clock is paused by hand (+ timeline, + ``ticket_events`` outbox)."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity

from pulse.db import SessionFactory
from pulse.domain import records, sla
from pulse.domain.commands import RecordSlaCommand, SyncSlaCommand, SyncSlaResult
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.services.sla import SlaPolicyResolver, SlaWriter


class SlaActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @activity.defn
    async def sync_sla(self, command: SyncSlaCommand) -> SyncSlaResult:
        """After a committed change: (re)load the ticket's policy if asked, move the clock
        (``sla.follow``) and store the SLA fields + events if they changed — one transaction.
        Idempotent by ``command_id`` (a retry recomputes the same clock and writes nothing twice)."""
        try:
            async with self.sessions() as session, session.begin():
                policy = None
                if command.reload_policy or command.ledger is None:
                    policy = await SlaPolicyResolver(session).for_ticket(command.account_id, command.facts)
                ledger, events = sla.follow(
                    command.ledger, policy=policy, status_before=command.status_before, status=command.status,
                    first_responded_at=command.first_responded_at, created_at=command.created_at,
                    now=command.changed_at,
                )
                snapshot = sla.snapshot(ledger)
                ticket = None
                if events or snapshot != command.stored:
                    ticket = await SlaWriter(session).record(
                        command.command_id, command.account_id, command.ticket_id, snapshot, events, command.actor,
                        command.stored.sla_status if command.stored else None,
                    )
                return SyncSlaResult(ledger=ledger, events=events, ticket=ticket)
        except DomainError as error:
            raise to_application_error(error) from None

    @activity.defn
    async def record_sla(self, command: RecordSlaCommand) -> records.Ticket:
        """Store the SLA fields + events; idempotent by ``command_id`` (a retry logs nothing twice
        and answers the current ticket)."""
        try:
            async with self.sessions() as session, session.begin():
                return await SlaWriter(session).record(
                    command.command_id, command.account_id, command.ticket_id, command.snapshot, command.events,
                    command.actor, command.status_before,
                )
        except DomainError as error:
            raise to_application_error(error) from None

    def all(self) -> list[Callable[..., Any]]:
        return [self.sync_sla, self.record_sla]
