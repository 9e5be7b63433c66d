"""Running the simulator: ``pulse maverick-sim --port ...`` (blocking), or
:func:`running_simulator` (a real HTTP server on a free port inside the caller's event loop, for
tests and benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import AsyncIterator

import uvicorn

from pulse.integrations.maverick.simulator.app import Simulator, create_simulator_app
from pulse.integrations.maverick.simulator.seed import seed_categories, seed_tickets


@dataclass
class RunningSimulator:
    sim: Simulator
    url: str  # the API's base URL (the config's apiUrl)

    @property
    def api_key(self) -> str:
        return self.sim.api_key


def build(api_key: str, *, tickets: int = 0, webhook_url: str | None = None, webhook_secret: str | None = None,
          seed: int | None = None) -> Simulator:
    sim = Simulator(api_key=api_key)
    seed_categories(sim.state)
    if webhook_url and webhook_secret:
        sim.send_webhooks_to(webhook_url, webhook_secret)
    if tickets:
        seed_tickets(sim.state, tickets, seed=seed)
    return sim


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def running_simulator(sim: Simulator | None = None, *, host: str = "127.0.0.1",
                            port: int | None = None) -> AsyncIterator[RunningSimulator]:
    """Serve ``sim`` over real HTTP until the block ends."""
    sim = sim or build("maverick-sim-key")
    port = port or _free_port(host)
    config = uvicorn.Config(create_simulator_app(sim), host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield RunningSimulator(sim=sim, url=f"http://{host}:{port}")
    finally:
        server.should_exit = True
        await task


def serve(port: int, *, host: str = "127.0.0.1", api_key: str = "maverick-sim-key", tickets: int = 25,
          webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
    sim = build(api_key, tickets=tickets, webhook_url=webhook_url, webhook_secret=webhook_secret, seed=42)
    uvicorn.run(create_simulator_app(sim), host=host, port=port, log_level="warning")
