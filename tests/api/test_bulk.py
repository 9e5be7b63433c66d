"""Bulk operations: each ticket changed once through its own workflow (same rules as PATCH), one
failure does not stop the others, progress is live, and a worker restart neither skips nor
repeats a ticket."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.worker import build_worker
from tests.conftest import AccountContext, make_account


async def finished(account: AccountContext, bulk_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await account.get(f"/api/tickets/bulk/{bulk_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] == "completed":
            return body
        assert time.monotonic() < deadline, f"bulk operation still {body['status']}: {body}"
        await asyncio.sleep(0.1)


async def start(account: AccountContext, **body: Any) -> int:
    response = await account.post("/api/tickets/bulk", json=body)
    assert response.status_code == 202, response.text
    return response.json()["bulkOperationId"]


async def test_bulk_update_with_a_failing_ticket_in_the_middle_changes_all_the_others(account: AccountContext) -> None:
    tickets = [await account.create_ticket(subject=f"Ticket {i}") for i in range(5)]
    middle = tickets[2]
    assert (await account.patch(f"/api/tickets/{middle['id']}", json={"status": "resolved"})).status_code == 200

    bulk_id = await start(account, ticketIds=[t["id"] for t in tickets], operation="update",
                          changes={"status": "waiting_customer", "priority": "high"})
    result = await finished(account, bulk_id)

    assert (result["total"], result["succeeded"], result["failed"], result["pending"]) == (5, 4, 1, 0)
    assert [(e["ticketId"], e["code"]) for e in result["errors"]] == [(middle["id"], "invalid_transition")]
    assert "resolved" in result["errors"][0]["error"] and result["operation"] == "update"
    for ticket in tickets:
        current = (await account.get(f"/api/tickets/{ticket['id']}")).json()
        if ticket is middle:
            assert current["status"] == "resolved" and current["priority"] == "medium"
        else:
            assert current["status"] == "waiting_customer" and current["priority"] == "high"
            assert current["version"] == ticket["version"] + 1  # one change, like one PATCH
    timeline = (await account.get(f"/api/tickets/{tickets[0]['id']}/timeline")).json()["data"]
    changes = [(e["field"], e["toValue"]) for e in timeline if e["eventType"] in ("field_changed", "status_changed")]
    assert ("status", "waiting_customer") in changes and ("priority", "high") in changes


async def test_bulk_by_filter_adds_and_removes_tags(account: AccountContext) -> None:
    high = [await account.create_ticket(priority="high", tags=["keep", "old"]) for _ in range(3)]
    low = await account.create_ticket(priority="low", tags=["old"])

    added = await finished(account, await start(account, filter={"priority": "high"}, operation="add_tags",
                                                changes={"tags": ["VIP", "keep"]}))
    assert (added["total"], added["succeeded"]) == (3, 3)
    removed = await finished(account, await start(account, filter={"tags": ["vip"]}, operation="remove_tags",
                                                  changes={"tags": ["old"]}))
    assert (removed["total"], removed["succeeded"]) == (3, 3)

    for ticket in high:
        assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["tags"] == ["keep", "vip"]
    assert (await account.get(f"/api/tickets/{low['id']}")).json()["tags"] == ["old"]


async def test_bulk_delete_removes_open_and_closed_tickets_and_reports_unknown_ones(
        account: AccountContext, other_account: AccountContext) -> None:
    open_ticket = await account.create_ticket()
    closed = await account.create_ticket()
    assert (await account.patch(f"/api/tickets/{closed['id']}", json={"status": "closed"})).status_code == 200
    foreign = await other_account.create_ticket()

    result = await finished(account, await start(account, ticketIds=[open_ticket["id"], closed["id"], foreign["id"]],
                                                 operation="delete"))

    assert (result["succeeded"], result["failed"]) == (2, 1)
    assert result["errors"] == [{"ticketId": foreign["id"], "error": f"ticket {foreign['id']} not found",
                                 "code": "not_found"}]
    assert (await account.get(f"/api/tickets/{open_ticket['id']}")).status_code == 404
    assert (await account.get(f"/api/tickets/{closed['id']}")).status_code == 404
    assert (await other_account.get(f"/api/tickets/{foreign['id']}")).status_code == 200
    assert (await other_account.get(f"/api/tickets/bulk/{result['bulkOperationId']}")).status_code == 404


async def test_bulk_requests_are_validated_before_anything_runs(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ticketIds": [ticket["id"]], "filter": {}, "operation": "delete"}, "body"),
        ({"operation": "delete"}, "body"),
        ({"ticketIds": [ticket["id"]], "operation": "explode"}, "operation"),
        ({"ticketIds": [ticket["id"]], "operation": "update", "changes": {"colour": "red"}}, "changes.colour"),
        ({"ticketIds": [ticket["id"]], "operation": "update", "changes": {"priority": "whenever"}}, "changes.priority"),
        ({"ticketIds": [ticket["id"]], "operation": "update", "changes": {}}, "changes"),
        ({"ticketIds": [ticket["id"]], "operation": "update", "changes": {"version": 1}}, "changes.version"),
        ({"ticketIds": [ticket["id"]], "operation": "update", "changes": {"assignedToUserId": 999999}}, "assignedToUserId"),
        ({"ticketIds": [ticket["id"]], "operation": "add_tags", "changes": {"tags": []}}, "changes.tags"),
        ({"ticketIds": [ticket["id"]], "operation": "delete", "changes": {"status": "open"}}, "changes"),
        ({"filter": {"colour": "red"}, "operation": "delete"}, "filter.colour"),
        ({"ticketIds": list(range(1, 10_002)), "operation": "delete"}, "ticketIds"),
    ]
    for body, field in cases:
        response = await account.post("/api/tickets/bulk", json=body)
        assert response.status_code == 422, (body, response.text)
        assert any(d["field"] == field for d in response.json()["details"]), (field, response.json())
    assert (await account.post("/api/tickets/bulk", json={"ticketIds": [ticket["id"]], "operation": "delete"},
                               token=account.tokens["read"])).status_code == 403
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["version"] == ticket["version"]


async def test_bulk_survives_a_worker_restart_without_skipping_or_repeating(
        temporal_client: Client, sessions: SessionFactory, settings: Settings) -> None:
    """Its own task queue, workers and app: the session's shared worker is not disturbed."""
    queue = f"bulk-restart-{uuid.uuid4().hex[:8]}"
    app = create_app(settings.model_copy(update={"task_queue": queue}), sessions=sessions, temporal=temporal_client)
    first = build_worker(temporal_client, sessions, queue)
    first_run = asyncio.create_task(first.run())
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pulse.test", timeout=60) as http:
            account = await make_account(http, sessions, "Restart")
            slots = asyncio.Semaphore(10)

            async def create(i: int) -> dict[str, Any]:
                async with slots:
                    return await account.create_ticket(subject=f"Restart {i}")

            tickets = await asyncio.gather(*(create(i) for i in range(40)))
            bulk_id = await start(account, ticketIds=[t["id"] for t in tickets], operation="update",
                                  changes={"priority": "urgent"})
            while True:
                progress = (await account.get(f"/api/tickets/bulk/{bulk_id}")).json()
                if progress["succeeded"] >= 6:
                    break
                await asyncio.sleep(0.02)
            await first.shutdown()
            await first_run
            stopped = (await account.get(f"/api/tickets/bulk/{bulk_id}")).json()
            assert stopped["status"] == "running" and stopped["succeeded"] < 40, stopped

            async with build_worker(temporal_client, sessions, queue):
                result = await finished(account, bulk_id, timeout=120)

            assert (result["total"], result["succeeded"], result["failed"]) == (40, 40, 0)
            for ticket in tickets:
                current = (await account.get(f"/api/tickets/{ticket['id']}")).json()
                assert current["priority"] == "urgent" and current["version"] == ticket["version"] + 1, current
            timeline = (await account.get(f"/api/tickets/{tickets[0]['id']}/timeline")).json()["data"]
            assert [e["toValue"] for e in timeline if e["field"] == "priority"] == ["urgent"]
