"""Builds the worker: registers the workflows and the activities (with their clients)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from pulse.activities.sla import SlaActivities
from pulse.activities.bulk import BulkActivities
from pulse.activities.tickets import TicketActivities
from pulse.config import Settings, get_settings
from pulse.db import SessionFactory, make_engine, make_sessionmaker
from pulse.temporal import connect
from pulse.workflows.bulk import BulkOperationWorkflow
from pulse.workflows.ticket import TicketWorkflow

WORKFLOWS = [TicketWorkflow, BulkOperationWorkflow]


def build_worker(client: Client, sessions: SessionFactory, task_queue: str) -> Worker:
    tickets = TicketActivities(sessions)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*tickets.all(), *SlaActivities(sessions).all(), *BulkActivities(sessions, client).all()],
        activity_executor=ThreadPoolExecutor(4),
        max_concurrent_workflow_tasks=100,
    )


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    client = await connect(settings.temporal_target, settings.temporal_namespace)
    worker = build_worker(client, make_sessionmaker(engine), settings.task_queue)
    logging.getLogger("pulse.worker").info("worker polling %s on %s", settings.task_queue, settings.temporal_target)
    try:
        await worker.run()
    finally:
        await engine.dispose()


def main() -> None:
    asyncio.run(run_worker())
