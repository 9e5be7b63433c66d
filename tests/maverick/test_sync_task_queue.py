"""The Maverick sync runs on a task queue of its own, served by a worker of its own: its imports,
webhook fetches and schedules are there, while the tickets they make stay the ticket workflows'
on the ticket engine's queue (so the sync's Maverick calls and reads take a process of their own);
a schedule saved before that queue existed is pointed at it when the Maverick worker starts."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from temporalio.client import Client, ScheduleActionStartWorkflow

from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.domain.tickets import workflow_id_for
from pulse.integrations.maverick.simulator import build, running_simulator
from pulse.secretbox import new_key
from pulse.domain.maverick import MaverickSettings
from pulse.services.maverick_schedules import MaverickSyncScheduler, schedule_id
from pulse.worker import build_workers, point_schedules_at_queue
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


async def test_the_maverick_worker_points_a_schedule_left_on_the_ticket_queue_at_its_own(
        tenant: AccountContext, temporal_client: Client, sessions: SessionFactory) -> None:
    async with running_simulator(build("sim-retarget-key")) as maverick:
        await connect(tenant, maverick, autoSync=True, syncIntervalMinutes=45)
        # The schedule as it was saved before the Maverick sync had a queue of its own.
        await MaverickSyncScheduler(temporal_client, MAVERICK_TASK_QUEUE).apply(
            tenant.account_id, MaverickSettings.model_construct(enabled=True, auto_sync=True, sync_interval_minutes=45))
        handle = temporal_client.get_schedule_handle(schedule_id(tenant.account_id))
        before = await handle.describe()
        assert isinstance(before.schedule.action, ScheduleActionStartWorkflow)
        assert before.schedule.action.task_queue == MAVERICK_TASK_QUEUE

        await point_schedules_at_queue(temporal_client, sessions, SYNC_TASK_QUEUE)  # what the worker's start runs

        after = await handle.describe()
        assert isinstance(after.schedule.action, ScheduleActionStartWorkflow)
        assert after.schedule.action.task_queue == SYNC_TASK_QUEUE
        assert after.schedule.spec.intervals[0].every.total_seconds() == 45 * 60  # nothing else changed
        assert not await MaverickSyncScheduler(temporal_client, SYNC_TASK_QUEUE).retarget(tenant.account_id)
        # Its input survived the rewrite: a sync it starts runs on the Maverick queue and succeeds.
        await handle.trigger()
        async with asyncio.timeout(30):
            while not (await handle.describe()).info.recent_actions:
                await asyncio.sleep(0.2)
        started = (await handle.describe()).info.recent_actions[-1].action
        run = temporal_client.get_workflow_handle(started.workflow_id)
        await asyncio.wait_for(run.result(), 60)
        assert (await run.describe()).task_queue == SYNC_TASK_QUEUE
        await tenant.request("PUT", "/api/integrations/maverick/config", json={"enabled": False})


async def test_retargeting_an_account_without_a_schedule_changes_nothing(
        tenant: AccountContext, temporal_client: Client) -> None:
    assert not await MaverickSyncScheduler(temporal_client, SYNC_TASK_QUEUE).retarget(tenant.account_id)
