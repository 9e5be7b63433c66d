"""Probes, without a token.

- ``GET /api/health/live``: the process answers (liveness: restart it when this fails).
- ``GET /api/health/ready``: PostgreSQL and Temporal answer **and** a worker polls the task queue
  (readiness: send it traffic). Without a worker, reads would work but every write would wait.
- ``GET /api/health``: PostgreSQL and Temporal, as before (kept for the probes and scripts that
  wait on it; its body is unchanged).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pulse.temporal import POLLER_SEEN_WITHIN, workers_polling

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3


async def _database(request: Request) -> str:
    try:
        async with request.app.state.sessions() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        return f"error: {type(error).__name__}"
    return "ok"


async def _temporal(request: Request) -> str:
    try:
        await asyncio.wait_for(request.app.state.temporal.service_client.check_health(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"
    return "ok"


async def _worker(request: Request) -> str:
    queue = request.app.state.settings.task_queue
    try:
        polling = await asyncio.wait_for(workers_polling(request.app.state.temporal, queue),
                                         timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"
    if polling == 0:
        return f"error: no worker polled {queue} in the last {POLLER_SEEN_WITHIN.seconds} s"
    return "ok"


def _answer(body: dict[str, str]) -> JSONResponse:
    healthy = all(value == "ok" for value in body.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", **body}, status_code=200 if healthy else 503)


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Temporal both answer; 503 naming the failing part otherwise."""
    database, temporal = await asyncio.gather(_database(request), _temporal(request))
    return _answer({"database": database, "temporal": temporal})


@router.get("/api/health/live")
async def live() -> JSONResponse:
    """200 while the process serves requests."""
    return JSONResponse({"status": "ok"})


@router.get("/api/health/ready")
async def ready(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Temporal answer and a worker polled the task queue recently; 503
    naming what is missing otherwise."""
    database, temporal, worker = await asyncio.gather(_database(request), _temporal(request), _worker(request))
    return _answer({"database": database, "temporal": temporal, "worker": worker})
