"""Attachments of Maverick tickets through a merge and a delete: a merge shows the secondary's
documents on the primary without sending any of them to Maverick again (each document moves once),
and a deleted attachment is never pushed, is not brought back by a pull, and leaves Maverick's
document where it is (Maverick's contract has no document delete)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from sqlalchemy import text

from pulse.db import SessionFactory
from pulse.integrations.maverick.simulator import RunningSimulator
from pulse.integrations.maverick.wire import Author
from tests.conftest import AccountContext
from tests.maverick.test_inbound_sync import sync
from tests.maverick.test_outbound_push import eventually, imported, maverick, settle  # noqa: F401 - fixture

MERCHANT = Author(type="merchant", name="Peak Fitness")
STATEMENT = b"%PDF-1.4 merchant statement, March\n" * 60
RECEIPT = b"%PDF-1.4 terminal receipt\n" * 40


async def attachments_of(tenant: AccountContext, ticket_id: int) -> list[dict[str, Any]]:
    response = await tenant.get(f"/api/tickets/{ticket_id}/attachments")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_merge_shows_a_maverick_document_on_the_primary_and_sends_nothing_to_maverick(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    secondary_remote, secondary = await imported(tenant, maverick)
    state.add_document(secondary_remote.id, file_name="statement.pdf", content_type="application/pdf",
                       content=STATEMENT, author=MERCHANT)
    await eventually(lambda: _has_attachments(tenant, secondary["id"], 1))  # by the document.created webhook
    primary_remote, primary = await imported(tenant, maverick)
    local = await tenant.create_ticket(subject="Receipt printer jams")  # not a Maverick ticket
    uploaded = await tenant.post(f"/api/tickets/{local['id']}/attachments",
                                 files={"file": ("receipt.pdf", RECEIPT, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    await settle(maverick)
    documents_before = {d: s.ticket_id for d, s in state.documents.items()}

    response = await tenant.post("/api/tickets/merge", json={
        "primaryTicketId": primary["id"], "ticketIdsToMerge": [secondary["id"], local["id"]]})

    assert response.status_code == 200, response.text
    assert response.json()["attachmentsMerged"] == 2
    on_primary = await attachments_of(tenant, primary["id"])
    assert [(a["fileName"], a["source"], a["mergedFromTicketId"]) for a in on_primary] == [
        ("statement.pdf", "maverick", secondary["id"]), ("receipt.pdf", "pulse", local["id"])]
    await settle(maverick)
    run = await sync(tenant)  # a pull of both Maverick tickets afterwards
    await settle(maverick)
    assert run["status"] == "succeeded", run
    # Each document moved once: nothing was sent to either Maverick ticket, nothing came back twice.
    assert {d: s.ticket_id for d, s in state.documents.items()} == documents_before
    assert state.ticket_documents(primary_remote.id) == []
    assert [d.file_name for d in state.ticket_documents(secondary_remote.id)] == ["statement.pdf"]
    assert len(await attachments_of(tenant, primary["id"])) == 2
    assert len(await attachments_of(tenant, secondary["id"])) == 1
    after = (await tenant.get(f"/api/tickets/{primary['id']}")).json()
    assert after["attachmentCount"] == 2


async def test_a_deleted_maverick_document_stays_deleted_in_pulse_and_stays_in_maverick(
        tenant: AccountContext, maverick: RunningSimulator) -> None:
    state = maverick.sim.state
    remote, ticket = await imported(tenant, maverick)
    document, _ = state.add_document(remote.id, file_name="statement.pdf", content_type="application/pdf",
                                     content=STATEMENT, author=MERCHANT)
    attachment = (await eventually(lambda: _has_attachments(tenant, ticket["id"], 1)))[0]
    await settle(maverick)
    writes = state.integration_writes

    deleted = await tenant.request("DELETE", f"/api/tickets/{ticket['id']}/attachments/{attachment['id']}")

    assert deleted.status_code == 200, deleted.text
    assert await attachments_of(tenant, ticket["id"]) == []
    state.change_ticket(remote.id, {"subject": "Statement is wrong"}, changed_by=MERCHANT)  # a webhook and a fetch
    await settle(maverick)
    await sync(tenant)
    assert await attachments_of(tenant, ticket["id"]) == []  # not brought back
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 0
    assert [d.id for d in state.ticket_documents(remote.id)] == [document.id]  # Maverick keeps its document
    assert state.integration_writes == writes  # the delete sent nothing


async def test_an_attachment_deleted_before_its_push_ran_is_never_sent(
        tenant: AccountContext, maverick: RunningSimulator, sessions: SessionFactory) -> None:
    state = maverick.sim.state
    remote, ticket = await imported(tenant, maverick)
    maverick.sim.faults.fail_next = 10_000  # Maverick down: the push waits in its retries
    try:
        uploaded = await tenant.post(f"/api/tickets/{ticket['id']}/attachments",
                                     files={"file": ("card-numbers.txt", b"4111 1111 1111 1111", "text/plain")})
        assert uploaded.status_code == 201, uploaded.text
        attachment = uploaded.json()
        deleted = await tenant.request("DELETE", f"/api/tickets/{ticket['id']}/attachments/{attachment['id']}")
        assert deleted.status_code == 200, deleted.text
        await asyncio.sleep(2)  # the attempt that started before the delete has failed by now
    finally:
        maverick.sim.faults.fail_next = 0

    async def push_done() -> bool:
        async with sessions() as session:
            return bool(await session.scalar(text(
                "SELECT count(*) FROM outbox_deliveries d JOIN ticket_events e ON e.id = d.event_id "
                "WHERE e.ticket_id = :t AND e.event_type = 'attachment_added' AND d.consumer = 'maverick_push'"),
                {"t": ticket["id"]}))

    await eventually(push_done, timeout=60)
    assert state.ticket_documents(remote.id) == []
    timeline = (await tenant.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    assert [e["eventType"] for e in timeline if e["eventType"].startswith("attachment_")] == [
        "attachment_added", "attachment_deleted"]
    assert hashlib.sha256(b"4111 1111 1111 1111").hexdigest() not in {d.sha256 for d in
                                                                        state.ticket_documents(remote.id)}


async def _has_attachments(tenant: AccountContext, ticket_id: int, count: int) -> list[dict[str, Any]] | None:
    found = await attachments_of(tenant, ticket_id)
    return found if len(found) == count else None
