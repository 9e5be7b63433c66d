"""A Maverick ticket's comments and documents reach its Pulse ticket once each, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, AsyncIterator

import pytest_asyncio

from pulse.integrations.maverick.simulator import RunningSimulator, build, running_simulator
from pulse.integrations.maverick.wire import Author
from tests.conftest import AccountContext
from tests.maverick.test_inbound_sync import connect, maverick_tickets, sync

RECEIPT = b"%PDF-1.4 terminal receipt\n" * 50


@pytest_asyncio.fixture
async def maverick() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(build("sim-content-key")) as running:
        yield running


async def comments_of(tenant: AccountContext, ticket_id: int) -> list[dict[str, Any]]:
    return (await tenant.get(f"/api/tickets/{ticket_id}/comments", params={"pageSize": 200})).json()["data"]


async def test_comments_and_documents_arrive_once_each_and_ours_do_not_come_back(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    remote = state.create_ticket(subject="Receipts do not print", merchant_name="Peak Fitness")
    merchant = Author(type="merchant", name="Peak Fitness")
    state.add_comment(remote.id, body="It started this morning", internal=False, author=merchant)
    state.add_comment(remote.id, body="Checked the logs", internal=True, author=Author(type="agent", name="Sam"))
    state.add_comment(remote.id, body="Pushed by an integration", internal=False,
                      author=Author(type="integration", name="API client"), external_id="pulse-comment-1")
    document, _ = state.add_document(remote.id, file_name="receipt.pdf", content_type="application/pdf",
                                     content=RECEIPT, author=merchant)
    await connect(tenant, maverick)

    first = await sync(tenant)
    assert (first["status"], first["created"]) == ("succeeded", 1), first
    ticket = (await maverick_tickets(tenant))[remote.id]
    comments = await comments_of(tenant, ticket["id"])
    assert [(c["body"], c["authorType"], c["isInternal"]) for c in comments] == [
        ("It started this morning", "customer", False), ("Sam (Maverick): Checked the logs", "system", True)]
    attachments = (await tenant.get(f"/api/tickets/{ticket['id']}/attachments")).json()["data"]
    assert [(a["fileName"], a["source"], a["sha256"]) for a in attachments] == \
        [("receipt.pdf", "maverick", hashlib.sha256(RECEIPT).hexdigest())]
    content = await tenant.get(f"/api/tickets/{ticket['id']}/attachments/{attachments[0]['id']}/content")
    assert content.content == RECEIPT

    state.add_comment(remote.id, body="Now the screen is blank too", internal=False, author=merchant)
    second = await sync(tenant)
    assert second["updated"] == 1, second
    assert [c["body"] for c in await comments_of(tenant, ticket["id"])][-1] == "Now the screen is blank too"
    assert len(await comments_of(tenant, ticket["id"])) == 3

    await sync(tenant)
    after = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()
    assert len(await comments_of(tenant, ticket["id"])) == 3 and after["attachmentCount"] == 1
    assert document.id in {a.id for a in state.ticket_documents(remote.id)}


async def test_a_document_whose_bytes_do_not_match_its_hash_waits_for_a_later_sync(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    remote = state.create_ticket(subject="Boarding documents")
    document, _ = state.add_document(remote.id, file_name="id.png", content_type="image/png", content=b"real bytes",
                                     author=Author(type="merchant", name="M"))
    state.documents[document.id].content = b"corrupted on the way"
    await connect(tenant, maverick)

    broken = await sync(tenant)
    assert broken["status"] == "partial" and "sha256" in broken["errors"][0]["error"], broken
    ticket = (await maverick_tickets(tenant))[remote.id]  # the ticket itself came
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 0

    state.documents[document.id].content = b"real bytes"
    mended = await sync(tenant)
    assert mended["status"] == "succeeded", mended
    attachments = (await tenant.get(f"/api/tickets/{ticket['id']}/attachments")).json()["data"]
    assert [a["fileName"] for a in attachments] == ["id.png"]
    assert len(await maverick_tickets(tenant)) == 1


async def test_a_merchants_upload_through_the_admin_api_arrives_like_any_document(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    import httpx

    remote = maverick.sim.state.create_ticket(subject="Statement")
    async with httpx.AsyncClient(base_url=maverick.url) as admin:
        uploaded = await admin.post(f"/_admin/tickets/{remote.id}/documents", json={
            "fileName": "march.csv", "contentType": "text/csv",
            "contentBase64": base64.b64encode(b"date,amount\n").decode()})
        assert uploaded.status_code == 201, uploaded.text
    await connect(tenant, maverick)
    await sync(tenant)
    ticket = (await maverick_tickets(tenant))[remote.id]
    attachments = (await tenant.get(f"/api/tickets/{ticket['id']}/attachments")).json()["data"]
    assert [(a["fileName"], a["contentType"], a["size"]) for a in attachments] == [("march.csv", "text/csv", 12)]
