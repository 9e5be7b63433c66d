"""The Maverick sync runs on a task queue of its own, served by a worker of its own: its imports,
webhook fetches and schedules are there, while the tickets they make stay the ticket workflows'
on the ticket engine's queue (so the sync's Maverick calls and reads take a process of their own)."""

from __future__ import annotations

from pydantic import SecretStr
from temporalio.client import Client, ScheduleActionStartWorkflow

from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.domain.tickets import workflow_id_for
from pulse.integrations.maverick.simulator import build, running_simulator
from pulse.secretbox import new_key
from pulse.services.maverick_schedules import schedule_id
from pulse.worker import build_workers
from tests.conftest import AccountContext
from tests.maverick.conftest import MAVERICK_TASK_QUEUE, SYNC_TASK_QUEUE
from tests.maverick.test_inbound_sync import connect, sync
from tests.maverick.test_webhook_sync import _has, eventually

SECRET = "whsec_sync_queue_secret"


async def test_imports_webhook_fetches_and_schedules_run_on_the_maverick_queue_and_tickets_on_the_ticket_queue(
        tenant: AccountContext, pulse_server: str, temporal_client: Client) -> None:
    sim = build("sim-queue-key")
    sim.send_webhooks_to(f"{pulse_server}/api/integrations/maverick/webhook/{tenant.account_id}", SECRET)
    async with running_simulator(sim) as maverick:
        imported = sim.state.create_ticket(subject="Imported by a sync")
        await connect(tenant, maverick, webhookSecret=SECRET, autoSync=True, syncIntervalMinutes=60)
        schedule = await temporal_client.get_schedule_handle(schedule_id(tenant.account_id)).describe()
        assert isinstance(schedule.schedule.action, ScheduleActionStartWorkflow)
        assert schedule.schedule.action.task_queue == SYNC_TASK_QUEUE

        run = await sync(tenant)
        assert run["status"] == "succeeded", run
        sync_run = await temporal_client.get_workflow_handle(
            f"{schedule_id(tenant.account_id)}-run-{run['id']}").describe()
        assert sync_run.task_queue == SYNC_TASK_QUEUE

        announced = sim.state.create_ticket(subject="Announced by a webhook")
        ticket = await eventually(lambda: _has(tenant, announced.id))
        fetch = await temporal_client.get_workflow_handle(
            f"maverick-fetch-{tenant.account_id}-{announced.id}").describe()
        assert fetch.task_queue == SYNC_TASK_QUEUE
        for made in (ticket, await eventually(lambda: _has(tenant, imported.id))):
            assert made is not None
            described = await temporal_client.get_workflow_handle(workflow_id_for(tenant.account_id, made["id"])).describe()
            assert described.task_queue == MAVERICK_TASK_QUEUE  # the ticket engine's queue of these tests
        await tenant.request("PUT", "/api/integrations/maverick/config", json={"enabled": False})


async def test_a_worker_process_serves_the_ticket_queue_the_maverick_queue_or_both(
        settings: Settings, sessions: SessionFactory, temporal_client: Client) -> None:
    def queues(queue: str) -> list[str]:
        # A client takes one worker per task queue: each case its own names.
        configured = settings.model_copy(update={"task_queue": f"{queue}-tickets",
                                                 "maverick_task_queue": f"{queue}-maverick",
                                                 "secrets_key": SecretStr(new_key())})
        return [worker.task_queue for worker in build_workers(temporal_client, sessions, configured, queue)]

    assert queues("tickets") == ["tickets-tickets"]
    assert queues("maverick") == ["maverick-maverick"]
    assert queues("all") == ["all-tickets", "all-maverick"]
