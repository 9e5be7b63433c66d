"""An app whose settings hold a secrets key (the Maverick config encrypts its secrets with it),
served in process and, for webhooks from the simulator, over real HTTP, with its own workers (the
ticket engine's and the Maverick sync's, on task queues of their own) whose activities hold the
same key."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.secretbox import new_key
from pulse.worker import build_maverick_worker, build_worker
from tests.conftest import AccountContext, make_account

PUBLIC_URL = "https://pulse.example"
MAVERICK_TASK_QUEUE = "pulse-tests-maverick"
SYNC_TASK_QUEUE = "pulse-tests-maverick-sync"


@pytest_asyncio.fixture(scope="session")
async def maverick_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"secrets_key": SecretStr(new_key()), "public_url": PUBLIC_URL,
                                       "attachment_max_bytes": 64 * 1024, "task_queue": MAVERICK_TASK_QUEUE,
                                       "maverick_task_queue": SYNC_TASK_QUEUE})


@pytest_asyncio.fixture(scope="session")
async def maverick_worker(maverick_settings: Settings, sessions: SessionFactory,
                          temporal_client: Client) -> AsyncIterator[Worker]:
    """The ticket engine's worker and the Maverick sync's, each on its own task queue (as deployed)."""
    assert maverick_settings.secrets_key is not None
    key = maverick_settings.secrets_key.get_secret_value()
    tickets = build_worker(temporal_client, sessions, MAVERICK_TASK_QUEUE, secrets_key=key)
    sync = build_maverick_worker(temporal_client, sessions, SYNC_TASK_QUEUE, MAVERICK_TASK_QUEUE, secrets_key=key)
    async with tickets, sync:
        yield tickets


@pytest_asyncio.fixture(scope="session")
async def maverick_http(maverick_settings: Settings, sessions: SessionFactory, temporal_client: Client,
                        maverick_worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(maverick_settings, sessions=sessions, temporal=temporal_client)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pulse.test", timeout=60) as client:
            yield client


@pytest_asyncio.fixture
async def tenant(maverick_http: httpx.AsyncClient, sessions: SessionFactory) -> AccountContext:
    return await make_account(maverick_http, sessions, "Merchant Desk")


@pytest_asyncio.fixture
async def other_tenant(maverick_http: httpx.AsyncClient, sessions: SessionFactory) -> AccountContext:
    return await make_account(maverick_http, sessions, "Other Desk")


@pytest_asyncio.fixture(scope="session")
async def pulse_server(maverick_settings: Settings, sessions: SessionFactory, temporal_client: Client,
                       maverick_worker: Worker) -> AsyncIterator[str]:
    """The same app over real HTTP on a free port (the simulator's webhooks come in here)."""
    import asyncio

    import uvicorn

    from pulse.devstack import free_port

    port = free_port()
    app = create_app(maverick_settings, sessions=sessions, temporal=temporal_client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
