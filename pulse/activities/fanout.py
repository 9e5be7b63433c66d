"""The rules' fan-out: signal one page of an account's open tickets (bounded concurrency), the
cursor heartbeated so that a retried page resumes after the last ticket signalled."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from temporalio import activity
from temporalio.client import Client

from pulse.db import SessionFactory
from pulse.domain.commands import FanOutPage, FanOutProgress
from pulse.gateway import TicketGateway
from pulse.repositories.rules import RulesRepository

SIGNALS_IN_FLIGHT = 50


class FanOutActivities:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.gateway = TicketGateway(temporal, task_queue)

    @activity.defn
    async def signal_open_tickets(self, page: FanOutPage) -> FanOutProgress:
        details = activity.info().heartbeat_details
        after_id = max(page.after_id, int(details[0])) if details else page.after_id
        async with self.sessions() as session:
            ids = await RulesRepository(session).open_ticket_ids(page.account_id, after_id, page.page_size)
        signalled = 0
        for start in range(0, len(ids), SIGNALS_IN_FLIGHT):
            chunk = ids[start:start + SIGNALS_IN_FLIGHT]
            sent = await asyncio.gather(*(self.gateway.rules_changed(page.account_id, ticket_id, page.generation)
                                          for ticket_id in chunk))
            signalled += sum(sent)
            activity.heartbeat(chunk[-1])
        last_id = ids[-1] if len(ids) == page.page_size else None
        return FanOutProgress(signalled=signalled, last_id=last_id, pages=1)

    def all(self) -> list[Callable[..., Any]]:
        return [self.signal_open_tickets]
