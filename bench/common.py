"""What the benchmarks share."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import httpx


async def wait_healthy(http: httpx.AsyncClient, timeout: float = 90, check_alive: Callable[[], None] | None = None) -> None:
    """Until ``GET /api/health`` answers 200 (``check_alive`` raises if a process died meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check_alive:
            check_alive()
        try:
            if (await http.get("/api/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
    raise TimeoutError("the API did not become healthy")
