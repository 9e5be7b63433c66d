"""Maverick's webhooks at the account's own URL: verified (401 otherwise, in the contract's error
body), recorded once per event id however often and in whatever order they come."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import text

from pulse.db import SessionFactory
from pulse.integrations.maverick import sign
from pulse.integrations.maverick.simulator import build, running_simulator
from tests.conftest import AccountContext

CONFIG = "/api/integrations/maverick/config"
SECRET = "whsec_webhook_test_secret"


def event(event_id: str = "evt_1", **data: object) -> bytes:
    return json.dumps({"id": event_id, "type": "ticket.updated", "occurredAt": "2026-12-01T00:00:00Z",
                       "data": data or {"ticketId": "tkt_1"}}).encode()


async def configure(tenant: AccountContext, secret: str = SECRET, api_url: str = "https://maverick.example") -> str:
    response = await tenant.request("PUT", CONFIG, json={"enabled": True, "apiUrl": api_url, "apiKey": "maverick-sim-key",
                                                         "webhookSecret": secret})
    assert response.status_code == 200, response.text
    return f"/api/integrations/maverick/webhook/{tenant.account_id}"


async def post(tenant: AccountContext, url: str, body: bytes, signature: str | None) -> object:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Maverick-Signature"] = signature
    return await tenant.http.post(url, content=body, headers=headers)


async def deliveries(sessions: SessionFactory, account_id: int) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT event_id, deliveries FROM maverick_webhook_events "
                                          "WHERE account_id = :a"), {"a": account_id})
        return {event_id: count for event_id, count in rows}


async def test_a_signed_event_is_recorded_once_and_its_repeat_is_a_200_that_changes_nothing(
        tenant: AccountContext, sessions: SessionFactory) -> None:
    url = await configure(tenant)
    body = event("evt_repeat")
    first = await post(tenant, url, body, sign(SECRET, body, int(time.time())))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "eventId": "evt_repeat", "duplicate": False}
    again = await post(tenant, url, body, sign(SECRET, body, int(time.time())))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await deliveries(sessions, tenant.account_id) == {"evt_repeat": 2}


@pytest.mark.parametrize("make_signature", [
    lambda body: None,
    lambda body: "garbage",
    lambda body: sign("another-secret-entirely", body, int(time.time())),
    lambda body: sign(SECRET, body + b"\n", int(time.time())),
    lambda body: sign(SECRET, body, int(time.time()) - 301),
])
async def test_a_missing_forged_or_stale_signature_is_a_401_in_the_contracts_error_format(
        tenant: AccountContext, sessions: SessionFactory, make_signature) -> None:
    url = await configure(tenant)
    body = event("evt_forged")
    response = await post(tenant, url, body, make_signature(body))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature" and response.json()["message"]
    assert set(response.json()) == {"error", "message", "details"}
    assert SECRET not in response.text
    assert await deliveries(sessions, tenant.account_id) == {}


async def test_another_accounts_url_or_an_unconfigured_account_cannot_be_signed_for(
        tenant: AccountContext, other_tenant: AccountContext, sessions: SessionFactory) -> None:
    await configure(tenant)
    body = event("evt_elsewhere")
    signature = sign(SECRET, body, int(time.time()))
    for url in (f"/api/integrations/maverick/webhook/{other_tenant.account_id}",
                "/api/integrations/maverick/webhook/999999999999", "/api/integrations/maverick/webhook/abc",
                "/api/integrations/maverick/webhook/99999999999999999999999"):
        response = await post(tenant, url, body, signature)
        assert response.status_code == 401, (url, response.text)
    await configure(other_tenant, secret="whsec_other_account_secret")
    response = await post(tenant, f"/api/integrations/maverick/webhook/{other_tenant.account_id}", body, signature)
    assert response.status_code == 401
    assert await deliveries(sessions, other_tenant.account_id) == {}


async def test_a_signed_body_that_is_no_event_is_a_422(tenant: AccountContext) -> None:
    url = await configure(tenant)
    for body in (b"not json", b'{"type": "ticket.updated"}', b"[]"):
        response = await post(tenant, url, body, sign(SECRET, body, int(time.time())))
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error"


async def test_the_simulators_duplicated_and_reordered_webhooks_arrive_over_http_and_count_once(
        tenant: AccountContext, sessions: SessionFactory, pulse_server: str) -> None:
    url = await configure(tenant)
    sim = build("maverick-sim-key")
    sim.send_webhooks_to(pulse_server + url, SECRET)
    async with running_simulator(sim) as maverick:
        sender = maverick.sim.sender
        assert sender is not None
        sim.faults.duplicate_webhooks = 2
        ticket = maverick.sim.state.create_ticket(subject="Chargeback 42")  # sent twice
        maverick.sim.state.change_ticket(ticket.id, {"status": "assigned"}, changed_by=ticket.last_changed_by)  # twice
        await sender.idle()
        sim.faults.reorder_webhooks = 3
        for body in ("one", "two", "three"):  # held, then sent newest first
            maverick.sim.state.add_comment(ticket.id, body=body, internal=False, author=ticket.last_changed_by)
        await sender.idle()
        log = sender.log
    assert all(entry.delivered and entry.status == 200 for entry in log), [e.shown() for e in log]
    assert [entry.event_type for entry in log] == ["ticket.created", "ticket.created", "ticket.status_changed",
                                                   "ticket.status_changed"] + ["comment.created"] * 3
    received = await deliveries(sessions, tenant.account_id)
    assert len(received) == 5
    assert sorted(received.values()) == [1, 1, 1, 2, 2]
