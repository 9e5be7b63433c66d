"""Outbound over real HTTP: a Pulse change to a Maverick ticket reaches Maverick once, its echo
(by webhook or by the next pull) changes nothing, and what came from Maverick is never sent back."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest_asyncio

from pulse.integrations.maverick.simulator import RunningSimulator, build, running_simulator
from pulse.integrations.maverick.wire import Author
from tests.conftest import AccountContext
from tests.maverick.test_inbound_sync import maverick_tickets, sync

CONFIG = "/api/integrations/maverick/config"
SECRET = "whsec_outbound_tests"


@pytest_asyncio.fixture
async def maverick(tenant: AccountContext, pulse_server: str) -> AsyncIterator[RunningSimulator]:
    sim = build("sim-outbound-key")
    sim.send_webhooks_to(f"{pulse_server}/api/integrations/maverick/webhook/{tenant.account_id}", SECRET)
    async with running_simulator(sim) as running:
        response = await tenant.request("PUT", CONFIG, json={
            "enabled": True, "apiUrl": running.url, "apiKey": running.api_key, "webhookSecret": SECRET,
            "autoSync": False})
        assert response.status_code == 200, response.text
        yield running


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            found = check()
            if isinstance(found, Awaitable):
                found = await found
            if found:
                return found
            await asyncio.sleep(0.1)


async def settle(maverick: RunningSimulator, seconds: float = 1.5) -> None:
    assert maverick.sim.sender is not None
    await maverick.sim.sender.idle()
    await asyncio.sleep(seconds)
    await maverick.sim.sender.idle()


async def imported(tenant: AccountContext, maverick: RunningSimulator, **fields: Any) -> tuple[Any, dict[str, Any]]:
    remote = maverick.sim.state.create_ticket(subject="Terminal reboots itself", **fields)
    ticket = await eventually(lambda: _linked(tenant, remote.id))  # by the ticket.created webhook
    await settle(maverick)
    return remote, ticket


async def _linked(tenant: AccountContext, remote_id: str) -> dict[str, Any] | None:
    return (await maverick_tickets(tenant)).get(remote_id)


async def test_a_status_change_and_a_reply_reach_maverick_once_and_their_echo_changes_nothing(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    remote, ticket = await imported(tenant, maverick)
    state = maverick.sim.state
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})).status_code == 200
    reply = await tenant.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "We are replacing it"})
    assert reply.status_code == 201, reply.text
    note = await tenant.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Vendor RMA 123", "isInternal": True})
    assert note.status_code == 201

    await eventually(lambda: state.tickets[remote.id].status == "assigned" and len(state.comments[remote.id]) == 1)
    await settle(maverick)  # the echoes: ticket.status_changed and comment.created webhooks
    after_push = state.tickets[remote.id]
    assert after_push.last_changed_by is not None and after_push.last_changed_by.type == "integration"
    assert [(c.body, c.internal, c.author.type if c.author else None) for c in state.comments[remote.id]] == \
        [("We are replacing it", False, "integration")]
    pulse_after_push = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()

    run = await sync(tenant)  # and a pull that sees them
    await settle(maverick)
    assert (run["created"], run["updated"]) == (0, 0), run
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["version"] == pulse_after_push["version"]
    comments = (await tenant.get(f"/api/tickets/{ticket['id']}/comments")).json()["data"]
    assert [c["body"] for c in comments] == ["We are replacing it", "Vendor RMA 123"]
    assert state.tickets[remote.id].version == after_push.version  # zero ping-pong


async def test_changes_that_came_from_maverick_are_never_pushed_back(tenant: AccountContext,
                                                                     maverick: RunningSimulator) -> None:
    remote, ticket = await imported(tenant, maverick)
    state = maverick.sim.state
    merchant = Author(type="merchant", name="Merchant")
    state.change_ticket(remote.id, {"status": "pending_merchant"}, changed_by=merchant)
    state.add_comment(remote.id, body="Here are the photos", internal=False, author=merchant)
    merchant_version = state.tickets[remote.id].version
    # Pulse's own rule then moves it on: a customer's reply to a waiting ticket → in progress. That
    # change was caused by Maverick's comment too, so it is not pushed either.
    await eventually(lambda: _status_is(tenant, ticket["id"], "in_progress"))
    timeline = (await tenant.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    assert [e["toValue"] for e in timeline if e.get("field") == "status"] == ["waiting_customer", "in_progress"]
    await settle(maverick)
    assert state.tickets[remote.id].version == merchant_version
    assert [c.author.type for c in state.comments[remote.id] if c.author] == ["merchant"]


async def test_an_attachment_goes_to_maverick_once_and_does_not_come_back(tenant: AccountContext,
                                                                          maverick: RunningSimulator) -> None:
    remote, ticket = await imported(tenant, maverick)
    content = b"serial numbers\n" * 40
    uploaded = await tenant.post(f"/api/tickets/{ticket['id']}/attachments",
                                 files={"file": ("serials.txt", content, "text/plain")})
    assert uploaded.status_code == 201, uploaded.text
    state = maverick.sim.state
    documents = await eventually(lambda: state.ticket_documents(remote.id))
    assert [(d.file_name, d.sha256) for d in documents] == [("serials.txt", hashlib.sha256(content).hexdigest())]
    await settle(maverick)
    await sync(tenant)
    after = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["attachmentCount"] == 1
    assert len(state.ticket_documents(remote.id)) == 1


async def test_an_outbound_only_integration_pushes_but_pulls_nothing(tenant: AccountContext,
                                                                     maverick: RunningSimulator) -> None:
    remote, ticket = await imported(tenant, maverick)
    await tenant.request("PUT", CONFIG, json={"syncDirection": "outbound"})
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})).status_code == 200
    await eventually(lambda: maverick.sim.state.tickets[remote.id].status == "resolved")
    maverick.sim.state.change_ticket(remote.id, {"subject": "Changed in Maverick"},
                                     changed_by=Author(type="merchant", name="M"))
    await settle(maverick)
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["subject"] == "Terminal reboots itself"


async def _status_is(tenant: AccountContext, ticket_id: int, status: str) -> bool:
    return (await tenant.get(f"/api/tickets/{ticket_id}")).json()["status"] == status
