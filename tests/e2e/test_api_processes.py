"""``PULSE_API_PROCESSES=2``: ``pulse api`` serves one port from two processes, each a whole API
on the same database and Temporal server, each reading the one search index that one of them
writes, and each one's /metrics counting the requests of both."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from pulse.db import make_engine, make_sessionmaker
from pulse.devstack import free_port
from pulse.domain.changes import Actor, NewTicket
from pulse.domain.commands import CreateCommand, CreateTicketInput
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin
from pulse.services.ticket_engine import TicketEngine
from tests.conftest import migrated_database


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


async def _account_with_a_ticket(database_url: str) -> str:
    """A new account with one ticket, written by the ticket engine itself (no worker runs here);
    the account's token."""
    engine = make_engine(database_url, pool_size=1)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            account_id, _, token = await create_account_with_admin(session, "Two processes")
        async with sessions() as session, session.begin():
            ticket_id, number = await TicketRepository(session).allocate(account_id)
            await TicketEngine(session).create(CreateCommand(
                command_id=f"create-{ticket_id}", account_id=account_id, ticket_id=ticket_id,
                now=datetime.now(timezone.utc), input=CreateTicketInput(
                    account_id=account_id, ticket_id=ticket_id, number=number, actor=Actor(kind="user"),
                    ticket=NewTicket(subject="Printer zebracorn jams on page two"))))
        return token
    finally:
        await engine.dispose()


@pytest.fixture
def own_database_url(database_server_url: str) -> Iterator[str]:
    """A database of this test's own: its search index is the only one fed from its queue."""
    with migrated_database(database_server_url, f"pulse_test_processes_{uuid.uuid4().hex[:8]}") as url:
        yield url


def test_two_api_processes_serve_one_port_from_one_database(own_database_url: str, temporal_address: str,
                                                            tmp_path: Path) -> None:
    database_url = own_database_url
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
           "PULSE_API_PORT": str(port), "PULSE_API_PROCESSES": "2", "PULSE_SEARCH_ENGINE": "tantivy",
           "PULSE_SEARCH_INDEX_DIR": str(tmp_path / "search-index"), "PULSE_DATA_DIR": str(tmp_path)}
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
        # a token stored in the database works on fresh connections whichever process takes them,
        # and once the ticket is indexed each process finds it in the index (a reader reloads
        # within a second of a commit)
        token = asyncio.run(_account_with_a_ticket(database_url))

        searches = 0

        def search() -> httpx.Response:
            nonlocal searches
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as fresh:
                found = fresh.get("/api/tickets", params={"search": "zebracorn"})
            searches += 1
            assert found.status_code == 200, found.text
            assert [t["subject"] for t in found.json()["tickets"]] == ["Printer zebracorn jams on page two"]
            return found

        deadline = time.monotonic() + 30
        while "desc=tantivy" not in search().headers["server-timing"]:  # PostgreSQL answers meanwhile
            assert time.monotonic() < deadline, "the ticket never reached the search index"
            time.sleep(0.2)
        time.sleep(1.5)
        engines = [search().headers["server-timing"] for _ in range(8)]
        assert all("desc=tantivy" in engine for engine in engines), engines
        # whichever process answers a scrape counts every search, both processes' together
        for _ in range(6):
            scraped = httpx.get(base + "/metrics", timeout=10).text
            counted = [line for line in scraped.splitlines()
                       if line.startswith("pulse_http_requests_total{") and 'route="/api/tickets"' in line]
            assert len(counted) == 1 and float(counted[0].rsplit(" ", 1)[1]) == searches, counted
    finally:
        os.killpg(api.pid, 15)
        api.wait(20)
