"""Real parts for every test: PostgreSQL (a fresh database per test session, on ``$DATABASE_URL``'s
server or an embedded one) and Temporal (a dev server in memory; the time-skipping server for
timer tests). Tests isolate themselves by account: each test gets its own account and tokens."""

from __future__ import annotations

import contextlib

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.worker import Worker

from pulse.api.app import create_app
from pulse.codec import codec_from
from pulse.config import Settings
from pulse.db import SessionFactory, make_engine, make_sessionmaker
from pulse.devstack import (
    ensure_database,
    free_port,
    migrate,
    start_embedded_postgres,
    start_temporal,
    stop,
    with_database,
)
from pulse.services.auth import create_account_with_admin, issue_token
from pulse.temporal import connect_when_ready
from pulse.worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
TEST_TASK_QUEUE = "pulse-tests"
# The suite runs with workflow payloads encrypted, as `make run` does: this process's client and
# every `pulse worker` / `pulse dev` a test starts (they inherit the environment) share the ring.
TEST_PAYLOAD_KEYS = "test1:" + "cHVsc2UtdGVzdC1wYXlsb2FkLWtleS0zMi1ieXRlcyE="
os.environ.setdefault("PULSE_PAYLOAD_KEYS", TEST_PAYLOAD_KEYS)


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    """The PostgreSQL server: ``$DATABASE_URL``'s, or an embedded one kept under .pulse/."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server, url = start_embedded_postgres(ROOT / ".pulse" / "test")
    yield url
    server.cleanup()  # type: ignore[attr-defined]


@contextlib.contextmanager
def migrated_database(server_url: str, name: str) -> Iterator[str]:
    """A new database ``name`` on ``server_url``'s server, migrated; dropped afterwards."""
    url = ensure_database(server_url, name)
    migrate(url)
    yield url
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(database_server_url: str) -> Iterator[str]:
    with migrated_database(database_server_url, f"pulse_test_{os.getpid()}_{uuid.uuid4().hex[:6]}") as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url, pool_size=10)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server for the session, in memory, headless."""
    port = free_port()
    log_file = tmp_path_factory.mktemp("temporal") / "temporal.log"
    process = start_temporal(port, None, None, log_file)
    yield f"127.0.0.1:{port}"
    stop(process)


@pytest_asyncio.fixture(scope="session")
async def temporal_client(temporal_address: str) -> Client:
    return await connect_when_ready(temporal_address, codec=codec_from(os.environ["PULSE_PAYLOAD_KEYS"]))


@pytest_asyncio.fixture(scope="session")
async def worker(temporal_client: Client, sessions: SessionFactory) -> AsyncIterator[Worker]:
    running = build_worker(temporal_client, sessions, TEST_TASK_QUEUE)
    async with running:
        yield running


@pytest.fixture(scope="session")
def settings(database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The suite's app: every request comes from one address, and the auth walk fails hundreds of
    authentications on purpose, so the per-address limits are off here (tests/api/test_limits.py
    proves them with the defaults)."""
    return Settings(database_url=database_url, temporal_address=temporal_address, task_queue=TEST_TASK_QUEUE,
                    rate_per_address=0, auth_failures_per_minute=0,
                    search_index_dir=tmp_path_factory.mktemp("search") / "index")


@pytest_asyncio.fixture(scope="session")
async def api_app(settings: Settings, sessions: SessionFactory, temporal_client: Client,
                  worker: Worker) -> AsyncIterator[FastAPI]:
    """The real app, started (its search indexer runs), with a running worker."""
    app = create_app(settings, sessions=sessions, temporal=temporal_client)
    async with LifespanManager(app):
        yield app


@pytest_asyncio.fixture(scope="session")
async def http(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the real app (in process, over ASGI)."""
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pulse.test", timeout=60) as client:
        yield client


@pytest.fixture
def postgres_search(api_app: FastAPI) -> Iterator[None]:
    """Searches answered by PostgreSQL alone, as with ``PULSE_SEARCH_ENGINE=postgres``: for
    tests of PostgreSQL's own search plans."""
    reader, api_app.state.search_index = api_app.state.search_index, None
    yield
    api_app.state.search_index = reader


@dataclass
class AccountContext:
    """One account of the test: its id, admin user and tokens, and an HTTP client."""

    http: httpx.AsyncClient
    account_id: int
    admin_user_id: int
    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}", **extra}

    async def request(self, method: str, path: str, *, token: str | None = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers={**self.headers(token), **(headers or {})}, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def create_ticket(self, **fields: Any) -> dict[str, Any]:
        body = {"subject": "Something is broken", **fields}
        response = await self.post("/api/tickets", json=body)
        assert response.status_code == 201, response.text
        return response.json()


async def make_account(http: httpx.AsyncClient, sessions: SessionFactory, name: str = "Acme") -> AccountContext:
    async with sessions() as session, session.begin():
        account_id, admin_id, token = await create_account_with_admin(session, f"{name} {uuid.uuid4().hex[:6]}")
        tokens = {}
        for permissions in (["readSupport"], ["readSupport", "writeSupport"], ["manageSettings"]):
            _, plain = await issue_token(session, account_id=account_id, user_id=admin_id,
                                         name="+".join(permissions), permissions=permissions)
            tokens["+".join(permissions)] = plain
    context = AccountContext(http=http, account_id=account_id, admin_user_id=admin_id, admin_token=token)
    context.tokens = {"read": tokens["readSupport"], "write": tokens["readSupport+writeSupport"],
                      "settings": tokens["manageSettings"], "all": token}
    return context


@pytest_asyncio.fixture
async def account(http: httpx.AsyncClient, sessions: SessionFactory) -> AccountContext:
    return await make_account(http, sessions)


@pytest_asyncio.fixture
async def other_account(http: httpx.AsyncClient, sessions: SessionFactory) -> AccountContext:
    return await make_account(http, sessions, "Globex")

