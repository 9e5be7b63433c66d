"""The worker's metrics: the Temporal SDK's own and Pulse's activity outcomes, on one port."""

from __future__ import annotations

import os
import uuid

import httpx
from asgi_lifespan import LifespanManager

from pulse.api.app import create_app
from pulse.codec import codec_from
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.devstack import free_port
from pulse.telemetry import worker_runtime
from pulse.temporal import connect
from pulse.worker import build_worker
from tests.api.test_observability import sample
from tests.conftest import make_account


async def test_the_worker_serves_temporal_metrics_and_activity_outcomes_by_activity(
        settings: Settings, sessions: SessionFactory, temporal_address: str) -> None:
    port = free_port()
    client = await connect(temporal_address, codec=codec_from(os.environ["PULSE_PAYLOAD_KEYS"]),
                           runtime=worker_runtime("127.0.0.1", port))
    queue = f"metered-{uuid.uuid4().hex[:8]}"
    app = create_app(settings.model_copy(update={"task_queue": queue}), sessions=sessions, temporal=client)
    async with build_worker(client, sessions, queue), LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test",
                                     timeout=60) as http:
            account = await make_account(http, sessions)
            ticket = await account.create_ticket()
            for subject in ("one", "two"):
                assert (await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": subject})).status_code == 200
            assert (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "bogus"})).status_code == 422
        async with httpx.AsyncClient() as scraper:
            text = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
    assert sample(text, "pulse_activity_outcomes_total", activity_type="update_ticket", outcome="completed",
                  local="true", task_queue=queue) == 2, [l for l in text.splitlines() if "pulse_" in l]
    assert sample(text, "pulse_activity_outcomes_total", activity_type="create_ticket", outcome="completed",
                  task_queue=queue) == 1
    assert sample(text, "temporal_workflow_task_execution_latency_count", task_queue=queue) >= 3
    assert sample(text, "temporal_worker_task_slots_available", task_queue=queue) is not None
