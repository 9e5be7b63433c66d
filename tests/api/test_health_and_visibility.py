"""Health reporting, and tickets as the Temporal UI sees them (search attributes)."""

from __future__ import annotations

import asyncio

import httpx
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import make_engine, make_sessionmaker
from tests.conftest import AccountContext


async def test_health_is_ok_when_database_and_temporal_answer(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_health_is_503_naming_the_database_when_it_is_unreachable(settings: Settings,
                                                                        temporal_client: Client) -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)
    app = create_app(settings, sessions=make_sessionmaker(engine), temporal=temporal_client)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as client:
            response = await client.get("/api/health")
    await engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["database"].startswith("error") and body["temporal"] == "ok" and body["status"] != "ok"


async def test_ticket_workflows_are_listed_by_their_search_attributes(account: AccountContext,
                                                                      temporal_client: Client) -> None:
    team = (await account.post("/api/teams", json={"name": "Payments"})).json()
    ticket = await account.create_ticket(priority="urgent", assignedToTeamId=team["id"])
    await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})
    query = (f"TicketNumber = '{ticket['ticketNumber']}' AND TicketStatus = 'in_progress' "
             f"AND TicketPriority = 'urgent' AND TicketTeam = '{team['id']}'")
    found: list[str] = []
    for _ in range(50):  # visibility is eventually consistent
        found = [w.id async for w in temporal_client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert f"ticket-{account.account_id}-{ticket['id']}" in found
