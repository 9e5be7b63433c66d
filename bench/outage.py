"""What clients see while parts of the stack die: `pulse dev` (embedded PostgreSQL, Temporal dev
server, worker, API) on spare ports; `--clients` (8) clients send reads and creates in a loop
while PostgreSQL's postmaster, then Temporal, is killed with SIGKILL and restarted by `pulse dev`;
and a guesser sends `--guesses` (500) wrong tokens as fast as it can. Prints, per phase, the
answers by status, the slowest answer, and the first answer after recovery.

    .venv/bin/python bench/outage.py [--clients 8] [--seconds 20] [--guesses 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import wait_healthy  # noqa: E402
from pulse.devstack import free_port  # noqa: E402

TOKEN = "pulse_outage_bench_token"


async def hammer(api: str, clients: int, seconds: float, kill: Callable[[], None]) -> tuple[Counter, float]:
    """Reads and creates from ``clients`` loops for ``seconds``; ``kill`` runs after 2 s."""
    statuses: Counter = Counter()
    slowest = 0.0
    stop_at = time.monotonic() + seconds

    async def client(index: int) -> None:
        nonlocal slowest
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    if index % 2:
                        response = await http.get("/api/tickets?pageSize=5")
                    else:
                        response = await http.post("/api/tickets", json={"subject": f"outage {index}"})
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                took = time.monotonic() - started
                slowest = max(slowest, took)
                statuses[status] += 1
                await asyncio.sleep(0.05)

    async def killer() -> None:
        await asyncio.sleep(2)
        kill()

    await asyncio.gather(killer(), *(client(i) for i in range(clients)))
    return statuses, slowest


async def guess(api: str, guesses: int) -> tuple[Counter, float]:
    statuses: Counter = Counter()
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        for attempt in range(guesses):
            response = await http.get("/api/tickets", headers={"Authorization": f"Bearer pulse_guess_{attempt}"})
            statuses[str(response.status_code)] += 1
    return statuses, guesses / (time.monotonic() - started)


def child(dev_pid: int, marker: str) -> psutil.Process:
    for process in psutil.Process(dev_pid).children(recursive=True):
        if marker in " ".join(process.cmdline()):
            return process
    raise RuntimeError(f"no {marker} under pulse dev")


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pulse-bench-outage-"))
    ports = {"PULSE_API_PORT": free_port(), "PULSE_TEMPORAL_PORT": free_port(), "PULSE_TEMPORAL_UI_PORT": free_port()}
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update({key: str(value) for key, value in ports.items()}, PULSE_DATA_DIR=str(data_dir / "data"),
               PULSE_DEV_ADMIN_TOKEN=TOKEN)
    log = (data_dir / "dev.log").open("wb")
    dev = subprocess.Popen([sys.executable, "-m", "pulse.cli", "dev"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    api = f"http://127.0.0.1:{ports['PULSE_API_PORT']}"
    try:
        async with httpx.AsyncClient(base_url=api) as http:
            await wait_healthy(http, timeout=300)
        print(f"pulse dev up ({data_dir}); load {os.getloadavg()[0]:.1f}", flush=True)

        def kill_postgres() -> None:
            pid = int((data_dir / "data" / "postgres" / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

        for label, kill in (("PostgreSQL killed", kill_postgres),
                            ("Temporal killed", lambda: child(dev.pid, "start-dev").send_signal(signal.SIGKILL))):
            statuses, slowest = await hammer(api, args.clients, args.seconds, kill)
            print(f"{label} (at 2 s of {args.seconds:.0f} s, {args.clients} clients): "
                  + ", ".join(f"{status} × {count}" for status, count in sorted(statuses.items()))
                  + f"; slowest answer {slowest:.2f} s", flush=True)
        statuses, rate = await guess(api, args.guesses)
        print(f"{args.guesses} wrong-token guesses at {rate:.0f}/s: "
              + ", ".join(f"{status} × {count}" for status, count in sorted(statuses.items())), flush=True)
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
        log.close()
        print("dev log:", data_dir / "dev.log")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--guesses", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
