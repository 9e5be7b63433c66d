"""Temporal's time-skipping test server for workflow tests: timers fire as soon as nothing else
is running. Activities are the real ones, on the tests' real PostgreSQL."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pulse.db import SessionFactory
from pulse.domain import records
from pulse.domain.changes import NewTicket
from pulse.domain.commands import Actor, CreateTicketInput
from pulse.domain.tickets import workflow_id_for
from pulse.gateway import TicketGateway
from pulse.repositories.tickets import TicketRepository
from pulse.worker import build_worker
from pulse.search_attributes import ALL as SEARCH_ATTRIBUTES


def _test_server_type(key: Any) -> Any:
    """The index type to register ``key`` with on the time-skipping server. Datetime attributes are
    registered as keywords there: that server answers an unset Datetime attribute as a null typed
    ``Datetime``, which the SDK's ``describe()`` cannot decode (the dev server and real clusters
    drop an unset attribute)."""
    if key.indexed_value_type == SearchAttributeIndexedValueType.DATETIME:
        return IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    return IndexedValueType.ValueType(key.indexed_value_type)


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: _test_server_type(key) for key in SEARCH_ATTRIBUTES},
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


async def create_ticket(client: Client, task_queue: str, sessions: SessionFactory, account_id: int, actor: Actor,
                        **fields: Any) -> tuple[WorkflowHandle, records.Ticket]:
    """A ticket created as the API creates one (id and number allocated, then the gateway)."""
    async with sessions() as session, session.begin():
        ticket_id, number = await TicketRepository(session).allocate(account_id)
    ticket = await TicketGateway(client, task_queue).create(CreateTicketInput(
        account_id=account_id, ticket_id=ticket_id, number=number, actor=actor,
        ticket=NewTicket(**{"subject": "Printer on fire", **fields})))
    return client.get_workflow_handle(workflow_id_for(account_id, ticket_id)), ticket
