"""``PULSE_API_PROCESSES=2``: ``pulse api`` serves one port from two processes, each a whole API
on the same database and Temporal server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pulse.db import make_engine, make_sessionmaker
from pulse.devstack import free_port
from pulse.services.auth import create_account_with_admin


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


async def _new_account_token(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            _, _, token = await create_account_with_admin(session, "Two processes")
        return token
    finally:
        await engine.dispose()


def test_two_api_processes_serve_one_port_from_one_database(database_url: str, temporal_address: str,
                                                            tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
           "PULSE_API_PORT": str(port), "PULSE_API_PROCESSES": "2", "PULSE_SEARCH_ENGINE": "postgres",
           "PULSE_DATA_DIR": str(tmp_path)}
    api = subprocess.Popen([sys.executable, "-m", "pulse.cli", "api"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, api.stderr.read().decode() if api.stderr else ""
            try:
                if httpx.get(base + "/api/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "pulse api did not answer"
            time.sleep(0.2)
        # uvicorn's supervisor with two workers under it, each with its own app
        deadline = time.monotonic() + 30
        while len([pid for pid in _children(api.pid)
                   if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()]) < 2:
            assert time.monotonic() < deadline, "two worker processes were not started"
            time.sleep(0.2)
        # a token stored in the database works on fresh connections whichever process takes them
        token = asyncio.run(_new_account_token(database_url))
        for _ in range(8):
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as fresh:
                listed = fresh.get("/api/tickets")
                assert listed.status_code == 200, listed.text
                assert listed.json()["pagination"]["total"] == 0
    finally:
        os.killpg(api.pid, 15)
        api.wait(20)
