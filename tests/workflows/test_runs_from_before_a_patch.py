"""A ticket whose workflow run started on older workflow code keeps working after a deploy.

``workflow.patched`` answers False for the rest of a run that began before the patch, so such a
run takes the old code path *live*, against the new activities. Here the worker answers False
for ``sla-in-write-transaction`` on its own task queue, which is exactly what a run replayed
from a pre-patch history sees: every write must still apply, answer the committed ticket and
move the SLA clock (in its second local activity, as before the patch)."""

from __future__ import annotations

from typing import Any, AsyncIterator

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager
from temporalio import workflow
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.worker import build_worker
from pulse.workflows.ticket import SLA_IN_WRITE_TRANSACTION, TicketWorkflow
from tests.conftest import AccountContext, make_account

QUEUE = "pre-patch-runs"


@pytest_asyncio.fixture
async def pre_patch_account(monkeypatch: Any, database_url: str, temporal_address: str, temporal_client: Client,
                            sessions: SessionFactory) -> AsyncIterator[AccountContext]:
    patched = workflow.patched

    def as_before_the_patch(patch_id: str) -> bool:
        if patch_id == SLA_IN_WRITE_TRANSACTION and workflow.info().task_queue == QUEUE:
            return False
        return patched(patch_id)

    monkeypatch.setattr(workflow, "patched", as_before_the_patch)
    settings = Settings(database_url=database_url, temporal_address=temporal_address, task_queue=QUEUE)
    app = create_app(settings, sessions=sessions, temporal=temporal_client)
    async with build_worker(temporal_client, sessions, QUEUE, sandboxed=False), LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test",
                                     timeout=60) as http:
            yield await make_account(http, sessions, name="Pre-patch")


async def test_a_run_from_before_the_patch_applies_every_write_and_moves_the_clock(
    pre_patch_account: AccountContext, temporal_client: Client
) -> None:
    account = pre_patch_account
    ticket = await account.create_ticket(subject="Old run", priority="high")
    assert ticket["version"] == 1 and ticket["slaStatus"] == "on_time" and ticket["slaResolutionDue"]
    ref = f"/api/tickets/{ticket['id']}"

    upgraded = await account.patch(ref, json={"priority": "urgent"})
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["version"] == 2
    assert upgraded.json()["slaResolutionDue"] < ticket["slaResolutionDue"]  # re-targeted: 4 h instead of 8 h

    reply = await account.post(f"{ref}/comments", json={"body": "Looking into it"})
    assert reply.status_code == 201, reply.text
    waiting = await account.patch(ref, json={"status": "waiting_customer"})
    assert waiting.status_code == 200 and waiting.json()["slaStatus"] == "paused"

    stored = (await account.get(ref)).json()
    assert stored["version"] == 4 and stored["firstRespondedAt"] and stored["slaFirstResponseMet"] is True
    state = await temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}").query(
        TicketWorkflow.current_state
    )
    assert state.version == 4 and state.sla is not None and state.sla.paused_by_status
