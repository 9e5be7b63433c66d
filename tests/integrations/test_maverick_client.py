"""The Maverick client against the simulator over real HTTP: paging, retries, versions,
idempotent writes. The client is told nothing about the server but its URL and key."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pulse.integrations.maverick import (
    MaverickClient,
    MaverickError,
    MaverickUnavailable,
    NotFoundAtMaverick,
    RetryPolicy,
    VersionMismatch,
)
from pulse.integrations.maverick.simulator import RunningSimulator, build, running_simulator


class Sleeps:
    """Records the client's waits instead of waiting (the retries themselves go over HTTP)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest_asyncio.fixture
async def maverick() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(build("key-1")) as running:
        yield running


@pytest_asyncio.fixture
async def control(maverick: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=maverick.url) as admin:
        yield admin


def client_for(maverick: RunningSimulator, sleeps: Sleeps | None = None, **kwargs: object) -> MaverickClient:
    return MaverickClient(maverick.url, maverick.api_key, sleep=sleeps or Sleeps(), **kwargs)  # type: ignore[arg-type]


async def all_pages(client: MaverickClient, since: datetime | None = None, page_size: int = 100) -> list[list[str]]:
    return [[t.id for t in page.data] async for page in client.tickets_updated_since(since, page_size=page_size)]


async def test_paging_by_the_opaque_cursor_reaches_every_ticket_once(maverick: RunningSimulator,
                                                                    control: httpx.AsyncClient) -> None:
    assert (await control.post("/_admin/seed", json={"tickets": 230})).status_code == 200
    async with client_for(maverick) as client:
        pages = await all_pages(client, page_size=100)
    assert [len(page) for page in pages] == [100, 100, 30]
    ids = [ticket_id for page in pages for ticket_id in page]
    assert len(set(ids)) == 230


async def test_a_ticket_changed_while_paging_comes_again_later_and_none_is_skipped(
        maverick: RunningSimulator, control: httpx.AsyncClient) -> None:
    await control.post("/_admin/seed", json={"tickets": 30})
    seen: list[str] = []
    async with client_for(maverick) as client:
        pages = client.tickets_updated_since(None, page_size=10)
        first = await anext(pages)
        seen += [t.id for t in first.data]
        changed = first.data[0].id
        assert (await control.patch(f"/_admin/tickets/{changed}", json={"subject": "Changed meanwhile"})).status_code == 200
        async for page in pages:
            seen += [t.id for t in page.data]
    assert set(seen) == set(maverick.sim.state.tickets)
    assert seen.count(changed) == 2 and seen[-1] == changed


async def test_updated_since_lists_only_later_changes_oldest_first(maverick: RunningSimulator,
                                                                   control: httpx.AsyncClient) -> None:
    await control.post("/_admin/seed", json={"tickets": 5})
    async with client_for(maverick) as client:
        everything = [t async for page in client.tickets_updated_since(None) for t in page.data]
        cursor = max(t.updated_at for t in everything)
        later = [(await control.patch(f"/_admin/tickets/{t.id}", json={"priority": "low" if t.priority != "low" else "high"})).json()["id"]
                 for t in (everything[3], everything[1])]
        changed = [t async for page in client.tickets_updated_since(cursor + timedelta(microseconds=1)) for t in page.data]
    assert [t.id for t in changed] == later
    assert all(t.version == 2 for t in changed)


async def test_429_waits_the_retry_after_seconds_then_succeeds(maverick: RunningSimulator,
                                                               control: httpx.AsyncClient) -> None:
    await control.post("/_admin/faults", json={"failNext": 2, "failStatus": 429, "retryAfterSeconds": 7})
    sleeps = Sleeps()
    async with client_for(maverick, sleeps) as client:
        categories = await client.categories()
    assert [c.name for c in categories][:2] == ["Chargebacks", "Account Changes"]
    assert sleeps.waits == [7.0, 7.0]


async def test_5xx_is_retried_with_growing_backoff_and_reported_unavailable_when_it_lasts(
        maverick: RunningSimulator, control: httpx.AsyncClient) -> None:
    await control.post("/_admin/faults", json={"failNext": 3, "failStatus": 503})
    sleeps = Sleeps()
    async with client_for(maverick, sleeps, retry=RetryPolicy(max_attempts=4, initial_backoff=1.0)) as client:
        assert len(await client.categories()) == 5
        assert len(sleeps.waits) == 3
        assert 0.5 <= sleeps.waits[0] <= 1.0 and 1.0 <= sleeps.waits[1] <= 2.0 and 2.0 <= sleeps.waits[2] <= 4.0
        await control.post("/_admin/faults", json={"failNext": 4, "failStatus": 500})
        with pytest.raises(MaverickUnavailable):
            await client.categories()
        assert len(await client.categories()) == 5  # back up


async def test_a_rejected_api_key_fails_at_once_without_retries(maverick: RunningSimulator) -> None:
    sleeps = Sleeps()
    async with MaverickClient(maverick.url, "wrong-key", sleep=sleeps) as client:
        with pytest.raises(MaverickError) as raised:
            await client.categories()
    assert raised.value.status == 401 and sleeps.waits == []


async def test_status_change_with_a_stale_expected_version_is_a_version_mismatch(
        maverick: RunningSimulator, control: httpx.AsyncClient) -> None:
    ticket = (await control.post("/_admin/tickets", json={"subject": "Terminal offline"})).json()
    async with client_for(maverick) as client:
        changed = await client.change_status(ticket["id"], "in_review", expected_version=ticket["version"])
        assert changed.status == "in_review" and changed.version == ticket["version"] + 1
        assert changed.last_changed_by is not None and changed.last_changed_by.type == "integration"
        with pytest.raises(VersionMismatch):
            await client.change_status(ticket["id"], "resolved", expected_version=ticket["version"])
        with pytest.raises(NotFoundAtMaverick):
            await client.ticket("no-such-ticket")
    assert (await control.get(f"/_admin/state")).json()["tickets"] == 1


async def test_the_same_external_id_creates_one_comment_even_when_retried_after_a_failure(
        maverick: RunningSimulator, control: httpx.AsyncClient) -> None:
    ticket = (await control.post("/_admin/tickets", json={"subject": "Statement fee"})).json()
    async with client_for(maverick) as client:
        first = await client.add_comment(ticket["id"], "We are on it", internal=False, external_id="pulse-comment-1")
        await control.post("/_admin/faults", json={"failNext": 1, "failStatus": 502})
        again = await client.add_comment(ticket["id"], "We are on it", internal=False, external_id="pulse-comment-1")
        other = await client.add_comment(ticket["id"], "A note", internal=True, external_id="pulse-comment-2")
        comments = await client.comments(ticket["id"])
    assert again.id == first.id and other.id != first.id
    assert [(c.body, c.internal) for c in comments] == [("We are on it", False), ("A note", True)]


async def test_documents_upload_once_per_external_id_and_their_bytes_match_their_hash(
        maverick: RunningSimulator, control: httpx.AsyncClient) -> None:
    ticket = (await control.post("/_admin/tickets", json={"subject": "Boarding papers"})).json()
    content = b"%PDF-1.4 signed application\n" * 100
    async with client_for(maverick) as client:
        first = await client.add_document(ticket["id"], "application.pdf", content, "application/pdf",
                                          external_id="pulse-attachment-9")
        again = await client.add_document(ticket["id"], "application.pdf", content, "application/pdf",
                                          external_id="pulse-attachment-9")
        listed = await client.documents(ticket["id"])
        downloaded = await client.document_content(listed[0].id)
    assert again.id == first.id and len(listed) == 1
    assert listed[0].sha256 == hashlib.sha256(content).hexdigest() == hashlib.sha256(downloaded).hexdigest()
    assert listed[0].file_name == "application.pdf" and listed[0].size == len(content)


async def test_a_merchants_comment_shows_as_a_change_of_its_ticket(maverick: RunningSimulator,
                                                                   control: httpx.AsyncClient) -> None:
    ticket = (await control.post("/_admin/tickets", json={"subject": "Card reader"})).json()
    since = datetime.fromisoformat(ticket["updatedAt"].replace("Z", "+00:00")) + timedelta(microseconds=1)
    await control.post(f"/_admin/tickets/{ticket['id']}/comments", json={"body": "Still broken"})
    async with client_for(maverick) as client:
        changed = [t async for page in client.tickets_updated_since(since) for t in page.data]
        comments = await client.comments(ticket["id"])
    assert [t.id for t in changed] == [ticket["id"]]
    assert comments[0].author is not None and comments[0].author.type == "merchant"
    assert since.tzinfo is timezone.utc or since.utcoffset() == timedelta(0)
