"""Builds the workers: registers the workflows and the activities (with their clients).

Two task queues: the ticket engine's (``Settings.task_queue``: ticket, bulk, fan-out workflows and
every activity they run, the Maverick push included) and the Maverick sync's
(``Settings.maverick_task_queue``: imports and webhook fetches, which read Maverick and then
change tickets through the ticket workflows). ``pulse worker --queue tickets|maverick`` serves one
of them, so each gets a Python process (a core) of its own; ``pulse worker`` serves both."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from pulse.activities.bulk import BulkActivities
from pulse.activities.fanout import FanOutActivities
from pulse.activities.maverick import MaverickSyncActivities
from pulse.activities.merge import MergeActivities
from pulse.activities.outbox import OutboxActivities
from pulse.activities.tickets import TicketActivities
from pulse.codec import codec_from
from pulse.config import Settings, get_settings
from pulse.db import SessionFactory, make_engine, make_sessionmaker
from pulse.secretbox import SecretBox
from pulse.services.maverick_push import MaverickPush
from pulse.services.maverick_schedules import MaverickSyncScheduler
from pulse.telemetry import ActivityOutcomes, shutdown, temporal_tracing, tracer_provider_from_env, worker_runtime
from pulse.temporal import connect_patiently
from pulse.workflows.bulk import BulkOperationWorkflow
from pulse.workflows.fanout import RulesFanOutWorkflow
from pulse.workflows.maverick_sync import MaverickSyncWorkflow, MaverickTicketFetchWorkflow
from pulse.workflows.ticket import TicketWorkflow

MAVERICK_WORKFLOWS = [MaverickSyncWorkflow, MaverickTicketFetchWorkflow]
# The ticket worker keeps the Maverick workflows and activities too: sync and fetch runs started on
# the ticket queue before the Maverick queue existed finish there (the schedules that started them
# are pointed at the Maverick queue when its worker starts: point_schedules_at_queue).
WORKFLOWS = [TicketWorkflow, BulkOperationWorkflow, RulesFanOutWorkflow, *MAVERICK_WORKFLOWS]
QUEUES = ("all", "tickets", "maverick")


def build_worker(client: Client, sessions: SessionFactory, task_queue: str, *,
                 max_concurrent_workflow_tasks: int = 10, max_cached_workflows: int = 4000,
                 sandboxed: bool = True, secrets_key: str | None = None) -> Worker:
    """The worker is one Python process, so CPU-bound: a few concurrent workflow tasks keep each
    one short (with 100, tasks shared the core until they passed the 10 s workflow-task timeout
    and were redone, see bench/sla_timers.py), and a cache as large as the number of tickets with
    armed SLA timers spares a full replay at every timer.

    ``sandboxed``: run workflow code in Temporal's sandbox, which rejects non-deterministic calls
    (clock, randomness, I/O) and isolates module state per run. The tests build their workers with
    it (the default here); ``pulse worker`` runs without it (``PULSE_WORKER_SANDBOXED``), which
    saves the per-run module re-import and payload wrapping (see bench/README.md)."""
    activities = [
        *TicketActivities(sessions).all(),
        *OutboxActivities(sessions, maverick=MaverickPush(sessions, SecretBox(secrets_key))).all(),
        *MergeActivities(client, task_queue).all(),
        *BulkActivities(sessions, client, task_queue).all(),
        *FanOutActivities(sessions, client, task_queue).all(),
        # ``secrets_key`` opens the integration secrets (PULSE_SECRETS_KEY).
        *MaverickSyncActivities(sessions, client, task_queue, SecretBox(secrets_key)).all(),
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        activity_executor=ThreadPoolExecutor(4),
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        max_cached_workflows=max_cached_workflows,
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
        # Activity outcomes by activity (pulse.telemetry); the client's interceptors (tracing) too.
        interceptors=[ActivityOutcomes()],
    )


def build_maverick_worker(client: Client, sessions: SessionFactory, task_queue: str, ticket_task_queue: str, *,
                          max_concurrent_workflow_tasks: int = 10, sandboxed: bool = True,
                          secrets_key: str | None = None) -> Worker:
    """The Maverick sync's worker: its workflows and activities on ``task_queue``; the tickets they
    create or change are commands to the ticket workflows on ``ticket_task_queue``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=MAVERICK_WORKFLOWS,
        activities=MaverickSyncActivities(sessions, client, ticket_task_queue, SecretBox(secrets_key)).all(),
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
        interceptors=[ActivityOutcomes()],
    )


def build_workers(client: Client, sessions: SessionFactory, settings: Settings, queue: str = "all") -> list[Worker]:
    """The workers one process runs for ``queue``: ``tickets``, ``maverick`` or ``all`` (both)."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {', '.join(QUEUES)}")
    secrets_key = settings.secrets_key.get_secret_value() if settings.secrets_key else None
    workers = []
    if queue in ("all", "tickets"):
        workers.append(build_worker(client, sessions, settings.task_queue,
                                    max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                                    max_cached_workflows=settings.worker_max_cached_workflows,
                                    sandboxed=settings.worker_sandboxed, secrets_key=secrets_key))
    if queue in ("all", "maverick"):
        workers.append(build_maverick_worker(client, sessions, settings.maverick_task_queue, settings.task_queue,
                                             max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                                             sandboxed=settings.worker_sandboxed, secrets_key=secrets_key))
    return workers


def metrics_port(settings: Settings, queue: str) -> int:
    """A Maverick-only worker serves its metrics on a port of its own (beside a ticket worker's)."""
    return settings.maverick_worker_metrics_port if queue == "maverick" else settings.worker_metrics_port


def _metrics_runtime(settings: Settings, port: int) -> Runtime | None:
    """A runtime serving the worker's metrics, or None (port 0, or taken: the worker runs anyway)."""
    if not port:
        return None
    try:
        return worker_runtime(settings.worker_metrics_host, port)
    except ValueError as error:  # the port is taken (another worker on this machine)
        logging.getLogger("pulse.worker").warning("worker metrics are off: %s (set PULSE_WORKER_METRICS_PORT)", error)
        return None


async def run_worker(settings: Settings | None = None, queue: str = "all") -> None:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    keys = settings.payload_keys.get_secret_value() if settings.payload_keys else None
    tracer_provider = tracer_provider_from_env("pulse-worker")
    port = metrics_port(settings, queue)
    runtime = _metrics_runtime(settings, port)
    client = await connect_patiently(settings.temporal_target, settings.temporal_namespace, codec=codec_from(keys),
                                     interceptors=temporal_tracing(tracer_provider), runtime=runtime)
    sessions = make_sessionmaker(engine)
    workers = build_workers(client, sessions, settings, queue)
    log = logging.getLogger("pulse.worker")
    log.info("worker polling %s on %s", ", ".join(w.task_queue for w in workers), settings.temporal_target)
    if runtime is not None:
        log.info("worker metrics on http://%s:%s/metrics", settings.worker_metrics_host, port)
    try:
        async with asyncio.TaskGroup() as group:  # one failing stops the other
            for worker in workers:
                group.create_task(worker.run())
            if queue in ("all", "maverick"):
                group.create_task(point_schedules_at_queue(client, sessions, settings.maverick_task_queue))
    finally:
        await engine.dispose()
        shutdown(tracer_provider)


async def point_schedules_at_queue(client: Client, sessions: SessionFactory, task_queue: str) -> None:
    """The process that serves the Maverick queue points every account's sync schedule at it (a
    schedule saved before the queue existed starts its syncs on the ticket queue); a failure is
    logged, the worker runs on (the next start, or a config save, fixes the rest)."""
    log = logging.getLogger("pulse.worker")
    try:
        changed = await MaverickSyncScheduler(client, task_queue).retarget_all(sessions)
    except Exception:  # noqa: BLE001 - a worker that serves its queue matters more
        log.exception("the Maverick sync schedules were not checked")
        return
    if changed:
        log.info("%s Maverick sync schedule(s) now start their syncs on %s", changed, task_queue)


def main(queue: str = "all") -> None:
    asyncio.run(run_worker(queue=queue))
