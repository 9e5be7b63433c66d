"""While the database cannot be reached, requests answer 503 with Retry-After, not 500."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory, make_engine, make_sessionmaker
from pulse.devstack import free_port


async def test_a_request_during_a_database_outage_gets_503_with_retry_after(temporal_client: Client) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"
    engine = make_engine(unreachable, pool_size=1)
    app = create_app(Settings(database_url=unreachable), sessions=make_sessionmaker(engine), temporal=temporal_client)
    try:
        async with LifespanManager(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as http:
                for method, path in (("GET", "/api/tickets"), ("POST", "/api/tickets")):
                    response = await http.request(method, path, json={"subject": "x"},
                                                  headers={"Authorization": "Bearer pulse_anything"})
                    assert response.status_code == 503, response.text
                    assert response.headers["Retry-After"] == "5"
                    assert response.json()["error"] == "unavailable"
    finally:
        await engine.dispose()


async def test_a_write_while_temporal_is_down_gets_503_with_retry_after_within_seconds(
    settings: Settings, sessions: SessionFactory
) -> None:
    """The API starts without Temporal (its client connects lazily) and answers 503 quickly."""
    import time

    from pulse.services.auth import create_account_with_admin

    async with sessions() as session, session.begin():
        _, _, token = await create_account_with_admin(session, "No Temporal")
    down = Settings(database_url=settings.database_url, temporal_address=f"127.0.0.1:{free_port()}")
    app = create_app(down, sessions=sessions)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as http:
            started = time.monotonic()
            response = await http.post("/api/tickets", json={"subject": "x"},
                                       headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503, response.text
            assert time.monotonic() - started < 5
            assert response.headers["Retry-After"] == "5" and response.json()["error"] == "unavailable"
            assert (await http.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})).status_code == 200
