"""Connecting to Temporal: one data converter everywhere (pydantic; handles timedelta)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.converter import PayloadCodec
from temporalio.service import RetryConfig

from pulse.codec import data_converter

log = logging.getLogger("pulse.temporal")

# The API's calls give up on an unreachable server after about 3 s (then the request is a 503);
# the SDK's default keeps retrying for 10 s.
API_RETRY = RetryConfig(initial_interval_millis=100, multiplier=1.5, max_interval_millis=1000,
                        max_elapsed_time_millis=3000, max_retries=10)


async def connect(target: str, namespace: str = "default", *, lazy: bool = False,
                  retry_config: RetryConfig | None = None, codec: PayloadCodec | None = None,
                  interceptors: Sequence[Interceptor] = (), runtime: Runtime | None = None) -> Client:
    """``lazy``: connect at the first call, so a process can start while Temporal is down.
    ``codec``: encrypt payloads (pulse.codec). ``interceptors``: e.g. tracing (pulse.telemetry);
    a worker built on the client takes them too. ``runtime``: e.g. one serving metrics."""
    return await Client.connect(target, namespace=namespace, data_converter=data_converter(codec), lazy=lazy,
                                retry_config=retry_config, interceptors=interceptors, runtime=runtime)


async def connect_patiently(target: str, namespace: str = "default", *,
                            codec: PayloadCodec | None = None, **options: Any) -> Client:
    """``connect``, retried with backoff (up to 30 s apart) for as long as Temporal is away."""
    delay = 1.0
    while True:
        try:
            return await connect(target, namespace, codec=codec, **options)
        except Exception as error:  # noqa: BLE001 - logged; tried again
            log.warning("Temporal at %s is not reachable (%s); trying again in %.0f s", target, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def connect_when_ready(target: str, namespace: str = "default", *, timeout: float = 20.0,
                             codec: PayloadCodec | None = None) -> Client:
    """``connect``, retried while a server that was just started is still coming up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await connect(target, namespace, codec=codec)
        except Exception:  # noqa: BLE001 - still starting; the last attempt's error is raised
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.2)


# A worker long-polls for up to about a minute; one that last polled longer ago than this is gone.
POLLER_SEEN_WITHIN = timedelta(seconds=90)


async def workers_polling(client: Client, task_queue: str, *, within: timedelta = POLLER_SEEN_WITHIN) -> int:
    """How many workers polled ``task_queue`` for workflow tasks within ``within`` (Temporal keeps
    a poller listed for a few minutes after it stopped, so the last access time is what counts)."""
    response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    now = datetime.now(timezone.utc)
    return sum(1 for poller in response.pollers
               if poller.HasField("last_access_time") and now - poller.last_access_time.ToDatetime(timezone.utc) <= within)
