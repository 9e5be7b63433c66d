"""The SLA activities on the real database: following a new ticket seeds the account's policies and
starts the clock, and the clock's writes are idempotent (a retried activity logs nothing twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from pulse.activities.sla import SlaActivities
from pulse.db import SessionFactory
from pulse.domain import sla
from pulse.domain.commands import Actor, CreateTicketInput, RecordSlaCommand, SyncSlaCommand
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


async def test_following_a_new_ticket_seeds_the_policies_and_starts_the_clock_once(sessions: SessionFactory) -> None:
    account_id, ticket_id = await new_ticket(sessions)
    async with sessions() as session:
        created = await TicketRepository(session).get(account_id, ticket_id)
    assert created is not None and created.sla_status is None
    command = SyncSlaCommand(
        command_id=f"test-{ticket_id}/sla-1", account_id=account_id, ticket_id=ticket_id, now=created.created_at,
        actor=Actor.system(), ledger=None, reload_policy=True, facts=sla.TicketFacts(priority=Priority.HIGH),
        status_before=sla.TicketStatus.OPEN, status=sla.TicketStatus.OPEN, created_at=created.created_at,
        changed_at=created.created_at,
    )
    activities = SlaActivities(sessions)
    first = await activities.sync_sla(command)
    assert [e.type for e in first.events] == ["sla_started"]
    assert first.ticket is not None and first.ticket.sla_status == "on_time"
    assert first.ticket.sla_first_response_due == created.created_at + timedelta(minutes=60)  # seeded default
    assert first.ledger.policy.policy_id == first.ticket.sla_policy_id is not None

    retried = await activities.sync_sla(command)
    assert retried.ledger == first.ledger and retried.ticket == first.ticket
    unchanged = await activities.sync_sla(command.model_copy(update={
        "command_id": f"test-{ticket_id}/sla-2", "ledger": first.ledger, "reload_policy": False,
        "stored": sla.stored_snapshot(first.ticket)}))
    assert unchanged.events == [] and unchanged.ticket is None  # nothing to store
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.event_type == "sla_started"))
    assert count == 1


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
