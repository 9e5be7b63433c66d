"""The inbound sync against the simulator over real HTTP: first import, incremental syncs, racing
syncs, Maverick failing for a while — each Maverick ticket is one Pulse ticket, every time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest_asyncio
from temporalio.client import Client

from pulse.integrations.maverick.simulator import RunningSimulator, build, running_simulator
from tests.conftest import AccountContext

CONFIG = "/api/integrations/maverick/config"
SYNC = "/api/integrations/maverick/sync"
RUNS = "/api/integrations/maverick/sync-runs"


@pytest_asyncio.fixture
async def maverick() -> AsyncIterator[RunningSimulator]:
    sim = build("sim-api-key-1234")
    async with running_simulator(sim) as running:
        yield running


async def connect(tenant: AccountContext, maverick: RunningSimulator, **extra: Any) -> dict[str, Any]:
    response = await tenant.request("PUT", CONFIG, json={
        "enabled": True, "apiUrl": maverick.url, "apiKey": maverick.api_key, "webhookSecret": "whsec_sync_tests",
        "autoSync": False, **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def sync(tenant: AccountContext, timeout: float = 90) -> dict[str, Any]:
    started = await tenant.post(SYNC)
    assert started.status_code == 202, started.text
    return await finished(tenant, started.json()["syncRunId"], timeout)


async def finished(tenant: AccountContext, run_id: int, timeout: float = 90) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            run = (await tenant.get(f"{RUNS}/{run_id}")).json()
            if run["finishedAt"] is not None:
                return run
            await asyncio.sleep(0.2)


async def maverick_tickets(tenant: AccountContext) -> dict[str, dict[str, Any]]:
    response = await tenant.get("/api/tickets", params={"externalSource": "maverick", "pageSize": 200})
    assert response.status_code == 200, response.text
    tickets = response.json()["tickets"]
    by_remote = {t["externalTicketId"]: t for t in tickets}
    assert len(by_remote) == len(tickets), "a Maverick ticket has two Pulse tickets"
    return by_remote


async def test_the_first_import_makes_one_ticket_per_maverick_ticket_with_mapped_fields(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    chargeback = (await tenant.post("/api/ticket-types", json={"name": "Chargeback"})).json()
    await tenant.post("/api/integrations/maverick/ticket-type-mappings",
                      json={"maverickCategoryId": 1, "pulseTicketTypeId": chargeback["id"]})
    state = maverick.sim.state
    mapped = state.create_ticket(subject="Chargeback on order 77", body="Card holder disputes", category_id=1,
                                 status="pending_merchant", priority="critical", merchant_name="Corner Bakery",
                                 contact_email="owner@bakery.example")
    unmapped = state.create_ticket(subject="Terminal offline", category_id=4, status="in_review", priority="low")
    from pulse.integrations.maverick.simulator.seed import seed_tickets

    seed_tickets(state, 23, seed=5)
    await connect(tenant, maverick)

    run = await sync(tenant)
    assert (run["status"], run["trigger"], run["pulled"], run["created"], run["errors"]) == \
        ("succeeded", "manual", 25, 25, []), run
    tickets = await maverick_tickets(tenant)
    assert set(tickets) == set(state.tickets)
    first = tickets[mapped.id]
    assert (first["subject"], first["description"], first["status"], first["priority"], first["typeId"],
            first["source"], first["externalSource"], first["requesterName"], first["requesterEmail"]) == \
        ("Chargeback on order 77", "Card holder disputes", "waiting_customer", "urgent", chargeback["id"],
         "maverick", "maverick", "Corner Bakery", "owner@bakery.example")
    other = tickets[unmapped.id]
    types = {t["id"]: t["name"] for t in (await tenant.get("/api/ticket-types")).json()["data"]}
    assert (other["status"], other["priority"], types[other["typeId"]]) == \
        ("in_progress", "low", "Unmapped Maverick Tickets")
    timeline = (await tenant.get(f"/api/tickets/{first['id']}/timeline")).json()["data"]
    assert timeline[0]["actor"] == "maverick", timeline[0]


async def test_later_syncs_pull_only_changes_and_never_duplicate(tenant: AccountContext,
                                                                  maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    from pulse.integrations.maverick.simulator.seed import seed_tickets

    state.clock = lambda: datetime.now(timezone.utc) - timedelta(hours=2)  # seeded a while ago
    seed_tickets(state, 9, seed=9)
    state.clock = lambda: datetime.now(timezone.utc) - timedelta(hours=1)
    last = state.create_ticket(subject="The newest before the first sync")
    state.clock = lambda: datetime.now(timezone.utc)
    await connect(tenant, maverick)
    assert (await sync(tenant))["created"] == 10
    first, second = list(state.tickets.values())[:2]
    merchant = first.last_changed_by
    state.change_ticket(first.id, {"status": "resolved"}, changed_by=merchant)
    state.change_ticket(second.id, {"priority": "critical", "subject": "Now it is urgent"}, changed_by=merchant)
    added = state.create_ticket(subject="A new one", category_id=2)

    run = await sync(tenant)
    assert (run["status"], run["created"], run["updated"]) == ("succeeded", 1, 2), run
    # Only what changed since the stored cursor (and, by its one-second overlap, the last ticket the
    # first sync saw), not everything again.
    assert run["pulled"] == 4 and run["skipped"] == [], run
    assert last.id in maverick.sim.state.tickets
    tickets = await maverick_tickets(tenant)
    assert len(tickets) == 11 and added.id in tickets
    assert tickets[first.id]["status"] == "resolved"
    assert (tickets[second.id]["priority"], tickets[second.id]["subject"]) == ("urgent", "Now it is urgent")

    quiet = await sync(tenant)
    assert (quiet["created"], quiet["updated"]) == (0, 0), quiet
    assert len(await maverick_tickets(tenant)) == 11


async def test_an_agents_change_in_pulse_is_not_undone_by_an_unrelated_remote_change(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    remote = state.create_ticket(subject="Statement fee", priority="normal")
    await connect(tenant, maverick)
    await sync(tenant)
    ticket = (await maverick_tickets(tenant))[remote.id]
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"priority": "urgent"})).status_code == 200
    state.change_ticket(remote.id, {"subject": "Statement fee (March)"}, changed_by=remote.last_changed_by)
    await sync(tenant)
    after = (await maverick_tickets(tenant))[remote.id]
    assert (after["subject"], after["priority"]) == ("Statement fee (March)", "urgent")


async def test_two_syncs_at_once_create_each_ticket_once(tenant: AccountContext, maverick: RunningSimulator) -> None:
    from pulse.integrations.maverick.simulator.seed import seed_tickets

    seed_tickets(maverick.sim.state, 30, seed=3)
    await connect(tenant, maverick)
    started = [await tenant.post(SYNC), await tenant.post(SYNC)]
    runs = [await finished(tenant, response.json()["syncRunId"]) for response in started]
    assert all(run["status"] == "succeeded" for run in runs), runs
    assert sum(run["created"] for run in runs) == 30
    assert len(await maverick_tickets(tenant)) == 30


async def test_maverick_failing_for_a_while_then_back_converges_with_nothing_duplicated(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    from pulse.integrations.maverick.simulator.seed import seed_tickets

    seed_tickets(maverick.sim.state, 40, seed=11)
    await connect(tenant, maverick)
    maverick.sim.faults.fail_next = 5  # more than one activity attempt's worth of client retries
    maverick.sim.faults.fail_rate = 0.3  # and then 30 % of all calls
    run = await sync(tenant, timeout=240)
    assert run["status"] == "succeeded" and run["created"] == 40 and run["errors"] == [], run
    assert maverick.sim.faults.failed_calls >= 5
    maverick.sim.faults.fail_rate = 0.0
    assert len(await maverick_tickets(tenant)) == 40
    again = await sync(tenant)
    assert (again["created"], len(await maverick_tickets(tenant))) == (0, 40)


async def test_the_sync_schedule_follows_the_config(tenant: AccountContext, maverick: RunningSimulator,
                                                    temporal_client: Client) -> None:
    await connect(tenant, maverick, autoSync=True, syncIntervalMinutes=7)
    handle = temporal_client.get_schedule_handle(f"maverick-sync-{tenant.account_id}")
    described = await handle.describe()
    assert described.schedule.spec.intervals[0].every.total_seconds() == 7 * 60
    await tenant.request("PUT", CONFIG, json={"syncIntervalMinutes": 30})
    assert (await handle.describe()).schedule.spec.intervals[0].every.total_seconds() == 30 * 60
    await tenant.request("PUT", CONFIG, json={"autoSync": False})
    try:
        await handle.describe()
        raise AssertionError("the schedule should be gone")
    except Exception as error:  # noqa: BLE001
        assert "not found" in str(error).lower() or "NOT_FOUND" in str(error)


async def test_a_sync_of_a_disabled_or_outbound_only_integration_is_refused(tenant: AccountContext,
                                                                           maverick: RunningSimulator) -> None:
    refused = await tenant.post(SYNC)
    assert refused.status_code == 409 and refused.json()["error"] == "integration_disabled"
    await connect(tenant, maverick, syncDirection="outbound")
    refused = await tenant.post(SYNC)
    assert refused.status_code == 409 and refused.json()["error"] == "integration_outbound_only"
    assert (await tenant.get(RUNS)).json()["data"] == []


async def test_when_both_sides_changed_a_field_the_later_change_wins_and_the_timeline_says_so(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    remote = state.create_ticket(subject="Deposit missing", priority="normal")
    await connect(tenant, maverick)
    await sync(tenant)
    ticket = (await maverick_tickets(tenant))[remote.id]
    merchant = remote.last_changed_by

    # Pulse first, Maverick later: Maverick's priority wins.
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"priority": "high"})).status_code == 200
    state.change_ticket(remote.id, {"priority": "critical"}, changed_by=merchant)
    # Maverick first, Pulse later: Pulse's subject stays.
    state.change_ticket(remote.id, {"subject": "Deposit missing since Monday"}, changed_by=merchant)
    await asyncio.sleep(0.05)
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Deposit missing (bank says sent)"})
            ).status_code == 200
    await sync(tenant)

    after = (await maverick_tickets(tenant))[remote.id]
    assert (after["priority"], after["subject"]) == ("urgent", "Deposit missing (bank says sent)")
    timeline = (await tenant.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    conflicts = {entry["field"]: entry for entry in timeline if entry["eventType"] == "sync_conflict"}
    assert set(conflicts) == {"priority", "subject"}, timeline
    assert conflicts["priority"]["data"] == {"winner": "maverick", "pulseValue": "high", "maverickValue": "urgent"}
    assert conflicts["subject"]["data"]["winner"] == "pulse"
    assert conflicts["subject"]["data"]["maverickValue"] == "Deposit missing since Monday"
    assert conflicts["priority"]["actor"] == "maverick"
