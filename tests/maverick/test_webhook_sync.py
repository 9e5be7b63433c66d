"""Webhook-driven sync over real HTTP: the simulator announces a change, Pulse reads the current
remote object and applies it — once, however the announcements are duplicated or reordered."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

from pulse.integrations.maverick import sign
from pulse.integrations.maverick.simulator import build, running_simulator
from tests.conftest import AccountContext

CONFIG = "/api/integrations/maverick/config"
SECRET = "whsec_webhook_sync_secret"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)


async def linked(tenant: AccountContext) -> dict[str, dict[str, Any]]:
    tickets = (await tenant.get("/api/tickets", params={"externalSource": "maverick", "pageSize": 200})).json()["tickets"]
    by_remote = {t["externalTicketId"]: t for t in tickets}
    assert len(by_remote) == len(tickets), "a Maverick ticket has two Pulse tickets"
    return by_remote


async def test_webhooks_import_and_update_a_ticket_once_through_duplicates_and_reordering(
        tenant: AccountContext, pulse_server: str) -> None:
    sim = build("sim-webhook-key")
    sim.send_webhooks_to(f"{pulse_server}/api/integrations/maverick/webhook/{tenant.account_id}", SECRET)
    async with running_simulator(sim) as maverick:
        response = await tenant.request("PUT", CONFIG, json={
            "enabled": True, "apiUrl": maverick.url, "apiKey": maverick.api_key, "webhookSecret": SECRET,
            "autoSync": False})
        assert response.status_code == 200, response.text
        state, sender = maverick.sim.state, maverick.sim.sender
        assert sender is not None

        sim.faults.duplicate_webhooks = 1
        remote = state.create_ticket(subject="Card reader offline", priority="high", merchant_name="Luna Florist")
        ticket = (await eventually(lambda: _has(tenant, remote.id)))
        assert (ticket["subject"], ticket["priority"], ticket["status"]) == ("Card reader offline", "high", "open")

        sim.faults.reorder_webhooks = 3  # three changes announced newest first
        merchant = remote.last_changed_by
        state.change_ticket(remote.id, {"status": "assigned"}, changed_by=merchant)
        state.change_ticket(remote.id, {"priority": "critical"}, changed_by=merchant)
        state.change_ticket(remote.id, {"status": "pending_merchant", "subject": "Card reader offline (2 shops)"},
                            changed_by=merchant)
        await sender.idle()

        async def settled() -> dict[str, Any] | None:
            current = (await linked(tenant)).get(remote.id)
            return current if current and current["status"] == "waiting_customer" \
                and current["priority"] == "urgent" else None

        final = await eventually(settled)
        assert final["subject"] == "Card reader offline (2 shops)"
        assert final["id"] == ticket["id"] and len(await linked(tenant)) == 1
        assert all(entry.delivered for entry in sender.log)


async def test_a_forged_webhook_changes_nothing(tenant: AccountContext, pulse_server: str) -> None:
    sim = build("sim-webhook-key")
    async with running_simulator(sim) as maverick:
        await tenant.request("PUT", CONFIG, json={"enabled": True, "apiUrl": maverick.url, "apiKey": maverick.api_key,
                                                  "webhookSecret": SECRET, "autoSync": False})
        remote = maverick.sim.state.create_ticket(subject="Not announced by Maverick")
        body = json.dumps({"id": "evt_forged", "type": "ticket.created", "data": {"ticketId": remote.id}}).encode()
        forged = await tenant.http.post(f"/api/integrations/maverick/webhook/{tenant.account_id}", content=body,
                                        headers={"X-Maverick-Signature": sign("guessed-secret", body, int(time.time()))})
        assert forged.status_code == 401
        await asyncio.sleep(1.0)
        assert await linked(tenant) == {}


async def _has(tenant: AccountContext, remote_id: str) -> dict[str, Any] | None:
    return (await linked(tenant)).get(remote_id)
