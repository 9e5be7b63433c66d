"""SLA activities, run as local activities by the ticket workflow: following a committed change
with the clock (policy lookup + transition + write, one transaction), and storing the clock's state
when a threshold is reached or the clock is paused by hand (+ timeline, + ``ticket_events`` outbox)."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.commands import RecordSlaCommand, SyncSlaCommand, SyncSlaResult
from pulse.domain.errors import DomainError
from pulse.failures import to_application_error
from pulse.services.sla import SlaWriter, follow_change


class SlaActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @activity.defn
    async def sync_sla(self, command: SyncSlaCommand) -> SyncSlaResult:
        """After a committed change, in its own transaction (``follow_change``). Idempotent by
        ``command_id`` (a retry recomputes the same clock and writes nothing twice). Since the
        ``sla-in-write-transaction`` patch the writes move the clock themselves; this serves
        updates that were under way on older workflow code."""
        try:
            async with self.sessions() as session, session.begin():
                return await follow_change(session, command)
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
