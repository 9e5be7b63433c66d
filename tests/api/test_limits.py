"""Request limits: bodies over the limit are 413 before authentication and before parsing,
failed authentications and floods are 429 with Retry-After, and nothing is applied on the way."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from tests.conftest import AccountContext


@pytest_asyncio.fixture
async def limited(settings: Settings, sessions: SessionFactory, temporal_client: Client
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the default limits (the suite's own app turns the per-address ones off)."""
    defaults = Settings(database_url=settings.database_url, temporal_address=settings.temporal_address,
                        task_queue=settings.task_queue, max_body_bytes=64 * 1024, attachment_max_bytes=128 * 1024)
    app = create_app(defaults, sessions=sessions, temporal=temporal_client)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as http:
            yield http


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and set(response.json()) == {"error", "message", "details"}


async def test_a_body_over_the_limit_is_413_before_authentication(limited: httpx.AsyncClient) -> None:
    huge = b'{"subject": "' + b"x" * (200 * 1024) + b'"}'
    response = await limited.post("/api/tickets", content=huge, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")


async def test_a_streamed_body_over_the_limit_is_413_and_creates_nothing(limited: httpx.AsyncClient,
                                                                       account: AccountContext) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"subject": "streamed", "description": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    before = (await account.get("/api/tickets")).json()["pagination"]["total"]
    response = await limited.post("/api/tickets", content=chunks(),
                                  headers={**account.headers(), "Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == before


async def test_an_attachment_may_be_larger_than_a_json_body_up_to_its_own_limit(limited: httpx.AsyncClient,
                                                                               account: AccountContext) -> None:
    ticket = await account.create_ticket()
    fits = await limited.post(f"/api/tickets/{ticket['id']}/attachments", headers=account.headers(),
                              files={"file": ("log.txt", b"z" * (100 * 1024), "text/plain")})
    assert fits.status_code == 201, fits.text
    over = await limited.post(f"/api/tickets/{ticket['id']}/attachments", headers=account.headers(),
                              files={"file": ("log.txt", b"z" * (300 * 1024), "text/plain")})
    assert_error(over, 413, "payload_too_large")


async def test_guessing_tokens_is_429_with_retry_after_after_a_few_dozen_tries(limited: httpx.AsyncClient,
                                                                              account: AccountContext) -> None:
    statuses = []
    for attempt in range(60):
        response = await limited.get("/api/tickets", headers={"Authorization": f"Bearer pulse_guess{attempt}"})
        statuses.append(response.status_code)
    assert statuses[:20] == [401] * 20
    assert statuses[-1] == 429 and set(statuses) == {401, 429}
    limited_response = await limited.get("/api/tickets", headers={"Authorization": "Bearer pulse_again"})
    assert_error(limited_response, 429, "rate_limited")
    assert int(limited_response.headers["Retry-After"]) >= 1


async def test_one_credential_flooding_the_api_is_429_with_retry_after(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, account: AccountContext
) -> None:
    strict = Settings(database_url=settings.database_url, temporal_address=settings.temporal_address,
                      task_queue=settings.task_queue, rate_per_token=1, burst_per_token=5)
    app = create_app(strict, sessions=sessions, temporal=temporal_client)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as http:
            statuses = [(await http.get("/api/tickets", headers=account.headers())).status_code for _ in range(8)]
            other = await http.get("/api/tickets", headers=account.headers(account.tokens["read"]))
    assert statuses[:5] == [200] * 5 and statuses[-1] == 429
    assert other.status_code == 200  # another credential has its own bucket


async def test_lists_in_a_request_are_bounded_and_named_in_the_422(account: AccountContext) -> None:
    too_many_tags = await account.post("/api/tickets", json={"subject": "tags", "tags": [f"t{i}" for i in range(51)]})
    assert too_many_tags.status_code == 422 and "tags" in [d["field"] for d in too_many_tags.json()["details"]]
    ticket = await account.create_ticket()
    mentions = await account.post(f"/api/tickets/{ticket['id']}/comments",
                                  json={"body": "hi", "mentions": list(range(1, 102))})
    assert mentions.status_code == 422 and "mentions" in [d["field"] for d in mentions.json()["details"]]
    team = await account.post("/api/teams", json={"name": "Huge", "memberIds": list(range(1, 1002))})
    assert team.status_code == 422 and "memberIds" in [d["field"] for d in team.json()["details"]]


async def test_unknown_ids_in_a_list_are_all_named_after_one_lookup(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    ids = [account.admin_user_id] + list(range(10**12, 10**12 + 99))
    response = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "hi", "mentions": ids})
    assert response.status_code == 422, response.text
    assert len(response.json()["details"]) == 99
    members = [account.admin_user_id] + list(range(10**12, 10**12 + 499))
    team = await account.post("/api/teams", json={"name": "Ghosts", "memberIds": members})
    assert team.status_code == 422 and len(team.json()["details"]) == 499


async def test_an_idempotency_key_reused_with_another_body_is_422_not_the_first_resource(
    account: AccountContext
) -> None:
    key = {"Idempotency-Key": "create-once-7"}
    first = await account.post("/api/tickets", json={"subject": "First"}, headers=key)
    again = await account.post("/api/tickets", json={"subject": "First"}, headers=key)
    assert first.status_code == 201 and again.status_code in (200, 201) and again.json()["id"] == first.json()["id"]
    other = await account.post("/api/tickets", json={"subject": "Something else"}, headers=key)
    assert other.status_code == 422, other.text
    assert other.json()["details"][0]["field"] == "Idempotency-Key"

    user_key = {"Idempotency-Key": "user-once-7"}
    assert (await account.post("/api/users", json={"name": "Ada"}, headers=user_key)).status_code == 201
    reused = await account.post("/api/users", json={"name": "Grace"}, headers=user_key)
    assert reused.status_code == 422 and reused.json()["details"][0]["field"] == "Idempotency-Key"


async def test_if_match_star_matches_any_version_and_a_number_still_guards(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    starred = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Any version"},
                                  headers={"If-Match": "*"})
    assert starred.status_code == 200, starred.text
    stale = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Stale"},
                                headers={"If-Match": str(ticket["version"])})
    assert stale.status_code in (409, 412), stale.text
