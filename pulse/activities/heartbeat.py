"""Heartbeats while an activity works, so a dead worker is noticed by its heartbeat timeout
(seconds) instead of its start-to-close timeout (minutes); only a dead worker stops them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from temporalio import activity


@contextlib.asynccontextmanager
async def heartbeating(every_seconds: float) -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_seconds)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
