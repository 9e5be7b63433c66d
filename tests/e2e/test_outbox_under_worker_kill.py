"""The outbox survives a worker killed with SIGKILL: every mention acknowledged before the kill
becomes exactly one in-app notification once another worker takes over."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

import httpx
import psycopg
import pytest_asyncio
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from tests.conftest import AccountContext, make_account

MENTIONS = 24


def start_worker(database_url: str, temporal_address: str, task_queue: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
           "PULSE_TASK_QUEUE": task_queue}
    return subprocess.Popen([sys.executable, "-m", "pulse.cli", "worker"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest_asyncio.fixture
async def killable(tmp_path: Path, database_url: str, temporal_address: str, temporal_client: Client,
                   sessions: SessionFactory) -> AsyncIterator[tuple[AccountContext, list[subprocess.Popen], tuple]]:
    """An API in process and a worker in its own process (on its own task queue)."""
    task_queue = f"kill-{uuid.uuid4().hex[:6]}"
    workers = [start_worker(database_url, temporal_address, task_queue, tmp_path / "worker.log")]
    settings = Settings(database_url=database_url, temporal_address=temporal_address, task_queue=task_queue)
    app = create_app(settings, sessions=sessions, temporal=temporal_client)
    try:
        async with LifespanManager(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test",
                                         timeout=90) as http:
                yield await make_account(http, sessions), workers, (database_url, temporal_address, task_queue,
                                                                    tmp_path / "worker.log")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


async def test_mentions_acknowledged_before_a_worker_is_killed_are_each_notified_once(killable) -> None:
    account, workers, (database_url, temporal_address, task_queue, log) = killable
    colleague = (await account.post("/api/users", json={"name": "Kim"})).json()["id"]
    tickets = [await account.create_ticket(subject=f"Kill test {i}") for i in range(4)]

    async def mention(index: int) -> None:
        ticket = tickets[index % len(tickets)]
        response = await account.post(f"/api/tickets/{ticket['id']}/comments",
                                      json={"body": f"ping {index}", "mentions": [colleague]})
        assert response.status_code == 201, response.text

    await asyncio.gather(*(mention(i) for i in range(MENTIONS)))
    os.killpg(workers[0].pid, signal.SIGKILL)  # right after the last acknowledgement
    workers[0].wait()
    workers.append(start_worker(database_url, temporal_address, task_queue, log))

    deadline = time.monotonic() + 150  # a delivery lost with the worker is retried after its 60 s heartbeat timeout
    counts: list[tuple[int, int]] = []
    while time.monotonic() < deadline:
        with psycopg.connect(database_url, autocommit=True) as db:
            counts = db.execute(
                "SELECT e.id, count(n.id) FROM ticket_events e LEFT JOIN notifications n ON n.event_id = e.id "
                "WHERE e.account_id = %s AND e.event_type = 'comment_added' GROUP BY e.id",
                (account.account_id,)).fetchall()
        if len(counts) == MENTIONS and all(count == 1 for _, count in counts):
            break
        await asyncio.sleep(0.5)
    assert len(counts) == MENTIONS
    assert sorted(count for _, count in counts) == [1] * MENTIONS  # each mention notified exactly once
