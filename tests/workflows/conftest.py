"""Temporal's time-skipping test server for workflow tests: timers fire as soon as nothing else
is running. Activities are the real ones, on the tests' real PostgreSQL."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pulse.db import SessionFactory
from pulse.worker import build_worker
from pulse.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def time_skipping_worker(time_skipping_env: WorkflowEnvironment,
                               sessions: SessionFactory) -> AsyncIterator[Worker]:
    """A worker on its own task queue (``worker.task_queue``) for one test."""
    worker = build_worker(time_skipping_env.client, sessions, f"tests-{uuid.uuid4().hex[:8]}")
    async with worker:
        yield worker
