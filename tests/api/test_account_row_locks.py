"""The account row is read by every create (its rules generation) and updated by every ticket
number: numbering never waits for a create in flight, while a rules change still waits for the
creates in flight and the creates started during it wait for it (so the change's fan-out finds
every ticket created before it, and every ticket created after it sees the change)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from pulse.db import SessionFactory
from pulse.repositories.maverick_sync import MaverickLinkRepository
from pulse.repositories.rules import RulesRepository
from pulse.repositories.ticket_store import TicketStore
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin

_UNUSED_TICKET_ID = 2**62


async def _new_account(sessions: SessionFactory) -> int:
    async with sessions() as session, session.begin():
        account_id, _, _ = await create_account_with_admin(session, f"Locks {uuid.uuid4().hex[:6]}")
    return account_id


async def test_ticket_numbers_are_handed_out_while_a_create_is_in_flight(sessions: SessionFactory) -> None:
    account_id = await _new_account(sessions)
    async with sessions() as creating, creating.begin():
        await TicketStore(creating).account_for_create(account_id, _UNUSED_TICKET_ID)
        async with sessions() as numbering, numbering.begin():
            await numbering.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail the test
            _, api_number = await TicketRepository(numbering).allocate(account_id)
            link, reserved = await MaverickLinkRepository(numbering).reserve(account_id, "MAV-LOCK-1")
        assert reserved and link.number == api_number + 1


async def test_a_rules_change_waits_for_a_create_in_flight(sessions: SessionFactory) -> None:
    account_id = await _new_account(sessions)
    async with sessions() as creating:
        async with creating.begin():
            seen = await TicketStore(creating).account_for_create(account_id, _UNUSED_TICKET_ID)

            async def change_rules() -> int:
                async with sessions() as changing, changing.begin():
                    return await RulesRepository(changing).bump_generation(account_id)

            change = asyncio.create_task(change_rules())
            await asyncio.sleep(0.5)
            assert not change.done()  # the change waits for the create's commit
        assert await asyncio.wait_for(change, 10) == seen.generation + 1


async def test_a_create_started_during_a_rules_change_waits_and_sees_the_new_generation(
        sessions: SessionFactory) -> None:
    account_id = await _new_account(sessions)
    async with sessions() as changing:
        async with changing.begin():
            generation = await RulesRepository(changing).bump_generation(account_id)

            async def create() -> int:
                async with sessions() as creating, creating.begin():
                    return (await TicketStore(creating).account_for_create(account_id, _UNUSED_TICKET_ID)).generation

            reading = asyncio.create_task(create())
            await asyncio.sleep(0.5)
            assert not reading.done()  # the create waits for the change's commit
        assert await asyncio.wait_for(reading, 10) == generation
