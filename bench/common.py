"""What the benchmarks share."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from typing import Any, Callable, Coroutine

import httpx


async def wait_healthy(http: httpx.AsyncClient, timeout: float = 90, check_alive: Callable[[], None] | None = None,
                       path: str = "/api/health") -> None:
    """Until ``GET path`` answers 200 (``check_alive`` raises if a process died meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check_alive:
            check_alive()
        try:
            if (await http.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
    raise TimeoutError("the API did not become healthy")


def drop_database(server_url: str, name: str) -> None:
    """``DROP DATABASE name`` on ``server_url``'s server (connected to its ``postgres`` database)."""
    import psycopg

    from pulse.devstack import with_database

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_bench(run: Callable[[], Coroutine[Any, Any, int]], stack: Any, *, keep: bool, database: str,
              server_url: str) -> int:
    """Run a bench's coroutine against its stack of processes; SIGTERM or Ctrl-C stop it (130).
    Afterwards the stack is stopped, and its work dir and database removed unless ``keep``; a
    failure shows the processes' last log lines when the stack can."""

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        print("\ninterrupted; stopping …", flush=True)
        return 130
    except Exception:
        if hasattr(stack, "show_logs"):
            stack.show_logs()
        raise
    finally:
        stack.close()
        if keep:
            print(f"kept {stack.workdir} and database {database}")
        else:
            shutil.rmtree(stack.workdir, ignore_errors=True)
            try:
                drop_database(server_url, database)
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                print(f"could not drop {database}: {error}")
