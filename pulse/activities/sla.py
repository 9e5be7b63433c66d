"""SLA activities, run as local activities by the ticket workflow: which policy applies to a
ticket, and storing the clock's state on the ticket (+ timeline, + ``ticket_events`` outbox)."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity

from pulse.db import SessionFactory
from pulse.domain import records, sla
from pulse.domain.commands import LoadSlaPolicyCommand, RecordSlaCommand
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.services.sla import SlaPolicyResolver, SlaWriter


class SlaActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @activity.defn
    async def load_sla_policy(self, command: LoadSlaPolicyCommand) -> sla.SlaPolicy:
        """The policy (with its calendar) for the ticket's facts; seeds an account's defaults."""
        async with self.sessions() as session, session.begin():
            return await SlaPolicyResolver(session).for_ticket(command.account_id, command.facts)

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
        return [self.load_sla_policy, self.record_sla]
