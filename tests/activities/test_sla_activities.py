"""The SLA activities on the real database: policy selection seeds an account's defaults, and the
clock's write is idempotent (a retried activity logs nothing twice)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from pulse.activities.sla import SlaActivities
from pulse.db import SessionFactory
from pulse.domain import sla
from pulse.domain.commands import Actor, CreateTicketInput, LoadSlaPolicyCommand, RecordSlaCommand
from pulse.domain.tickets import Priority
from pulse.models import TicketEvent, TimelineEvent
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin
from pulse.services.ticket_writes import TicketWriter


async def new_ticket(sessions: SessionFactory) -> tuple[int, int]:
    async with sessions() as session, session.begin():
        account_id, user_id, _ = await create_account_with_admin(session, "SLA activities")
        ticket_id = await TicketRepository(session).next_id()
        await TicketWriter(session).create(
            CreateTicketInput(account_id=account_id, ticket_id=ticket_id, actor=Actor(user_id=user_id),
                              fields={"subject": "Where is my invoice?"}),
            datetime.now(UTC),
        )
    return account_id, ticket_id


async def test_the_first_policy_lookup_seeds_the_accounts_defaults(sessions: SessionFactory) -> None:
    account_id, ticket_id = await new_ticket(sessions)
    activities = SlaActivities(sessions)
    policy = await activities.load_sla_policy(LoadSlaPolicyCommand(
        account_id=account_id, ticket_id=ticket_id, facts=sla.TicketFacts(priority=Priority.HIGH)))
    assert (policy.first_response_minutes, policy.resolution_minutes) == (60, 480)
    assert policy.policy_id is not None
    again = await activities.load_sla_policy(LoadSlaPolicyCommand(
        account_id=account_id, ticket_id=ticket_id, facts=sla.TicketFacts(priority=Priority.HIGH)))
    assert again.policy_id == policy.policy_id  # seeded once


async def test_a_retried_sla_write_logs_nothing_twice(sessions: SessionFactory) -> None:
    account_id, ticket_id = await new_ticket(sessions)
    now = datetime.now(UTC)
    ledger, events = sla.start(sla.default_policy(Priority.URGENT), sla.TicketStatus.OPEN, now)
    command = RecordSlaCommand(command_id=f"test-{ticket_id}/sla-1", account_id=account_id, ticket_id=ticket_id,
                               now=now, actor=Actor.system(), snapshot=sla.snapshot(ledger), events=events)
    activities = SlaActivities(sessions)
    first = await activities.record_sla(command)
    retried = await activities.record_sla(command)
    assert first.sla_status == retried.sla_status == "on_time"
    assert first.sla_first_response_due == retried.sla_first_response_due == ledger.first_response.due_at
    assert first.version == 1  # the clock's writes leave the version alone
    async with sessions() as session:
        for table in (TimelineEvent, TicketEvent):
            count = await session.scalar(select(func.count()).select_from(table).where(
                table.ticket_id == ticket_id, table.event_type == "sla_started"))
            assert count == 1
