"""What the observability middleware costs a request (issue 14).

The same app, in process (httpx over ASGI, so no network noise), with and without the
``Observability`` middleware (request id, Prometheus counter + histogram by route template, one
JSON access-log line formatted and written to /dev/null as a deployment writes it to stderr).
The two variants take turns request by request (which goes first alternates), so load from
anything else on the machine hits both alike; the overhead is the median of the paired
differences.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/observability.py
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulse import logs  # noqa: E402
from pulse.api.app import create_app  # noqa: E402
from pulse.api.observability import Observability  # noqa: E402
from pulse.config import Settings  # noqa: E402
from pulse.db import make_engine, make_sessionmaker  # noqa: E402
from pulse.devstack import ensure_database, migrate  # noqa: E402
from pulse.services.auth import create_account_with_admin  # noqa: E402


CPU: dict[str, float] = {}  # this process's CPU seconds per variant (less disturbed by other load)


async def timed(http: httpx.AsyncClient, path: str, headers: dict[str, str], count: int,
                variant: str = "warm-up") -> list[float]:
    samples = []
    for _ in range(count):
        started, cpu = time.perf_counter(), time.process_time()
        response = await http.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
        CPU[f"{variant} {path}"] = CPU.get(f"{variant} {path}", 0.0) + time.process_time() - cpu
        assert response.status_code == 200, response.text
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000, help="per variant and route")
    args = parser.parse_args()
    database_url = ensure_database(os.environ["DATABASE_URL"], "pulse_bench_observability")
    migrate(database_url)
    logs.configure(logging.INFO, stream=open(os.devnull, "w"))
    engine = make_engine(database_url, pool_size=4)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        _, _, token = await create_account_with_admin(session, f"Bench {time.time_ns()}")
    settings = Settings(database_url=database_url, temporal_address="127.0.0.1:1", rate_per_token=0,
                        rate_per_address=0)
    apps = {}
    for variant in ("with", "without"):
        app = create_app(settings, sessions=sessions)
        if variant == "without":
            app.user_middleware = [m for m in app.user_middleware if m.cls is not Observability]
        apps[variant] = app
    results: dict[tuple[str, str], list[float]] = {}
    cases = (("/api/health/live", {}), ("/api/teams", {"Authorization": f"Bearer {token}"}))
    async with LifespanManager(apps["with"]), LifespanManager(apps["without"]):
        clients = {variant: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
                   for variant, app in apps.items()}
        for path, headers in cases:  # warm up
            for client in clients.values():
                await timed(client, path, headers, 200)
        for path, headers in cases:
            for index in range(args.requests):
                order = ("with", "without") if index % 2 else ("without", "with")
                for variant in order:
                    results.setdefault((variant, path), []).extend(
                        await timed(clients[variant], path, headers, 1, variant))
        for client in clients.values():
            await client.aclose()
    await engine.dispose()
    print(f"{args.requests} requests per variant and route, in process, the variants taking turns")
    print(f"{'route':<20} {'variant':<8} {'mean µs':>9} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs':>8}")
    for path, _ in cases:
        for variant in ("without", "with"):
            samples = sorted(results[(variant, path)])
            print(f"{path:<20} {variant:<8} {statistics.fmean(samples) * 1e6:>9.0f} "
                  f"{samples[len(samples) // 2] * 1e6:>8.0f} {samples[int(len(samples) * 0.99)] * 1e6:>8.0f} "
                  f"{CPU[f'{variant} {path}'] / len(samples) * 1e6:>8.0f}")
        paired = [a - b for a, b in zip(results[("with", path)], results[("without", path)])]
        print(f"{path:<20} overhead: median of paired differences {statistics.median(paired) * 1e6:.0f} µs")

if __name__ == "__main__":
    asyncio.run(main())
