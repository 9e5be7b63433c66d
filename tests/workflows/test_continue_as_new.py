"""A busy ticket continues as new when Temporal suggests it, carrying its state along."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.devstack import free_port, start_temporal, stop
from pulse.temporal import connect
from pulse.worker import build_worker
from pulse.workflows.ticket import TicketWorkflow
from tests.conftest import AccountContext, make_account


@pytest_asyncio.fixture
async def small_history_stack(tmp_path: Path, database_url: str, sessions: SessionFactory) -> AsyncIterator[tuple]:
    """A dev server that suggests continue-as-new after 40 events, with its own worker and API."""
    port = free_port()
    server = start_temporal(port, None, None, tmp_path / "temporal.log",
                            extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"])
    try:
        client = await connect(f"127.0.0.1:{port}")
        settings = Settings(database_url=database_url, temporal_address=f"127.0.0.1:{port}", task_queue="can-tests")
        app = create_app(settings, sessions=sessions, temporal=client)
        async with build_worker(client, sessions, "can-tests"), LifespanManager(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test",
                                         timeout=60) as http:
                yield client, await make_account(http, sessions)
    finally:
        stop(server)


async def test_a_ticket_continues_as_new_with_its_state_and_keeps_working(small_history_stack) -> None:
    client, account = small_history_stack
    account: AccountContext
    ticket = await account.create_ticket(priority="low")
    handle = client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    first_run = (await handle.describe()).run_id

    for index in range(15):
        response = await account.patch(f"/api/tickets/{ticket['id']}", json={"tags": [f"round-{index}"]})
        assert response.status_code == 200, response.text

    latest = await handle.describe()
    assert latest.run_id != first_run, "the workflow should have continued as new"
    state = await handle.query(TicketWorkflow.current_state)
    stored = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert state.version == stored["version"] == 16
    assert state.number is not None and f"PULSE-{state.number}" == stored["ticketNumber"]
    # The agenda travels with the state: the resolution breach is still due when the ticket says.
    breach = next(item for item in state.agenda if item.key.startswith("resolution:breach"))
    assert breach.at.isoformat().replace("+00:00", "Z") == stored["slaResolutionDue"]

    # The new run still validates against the carried state and applies changes.
    stale = await account.patch(f"/api/tickets/{ticket['id']}", json={"priority": "high"}, headers={"If-Match": "3"})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    closed = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})
    assert closed.status_code == 200 and closed.json()["version"] == 17
