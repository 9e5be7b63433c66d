"""The default search engine, the tantivy index beside the API (``pulse.search_index``): it
answers a search once it holds every change of the account, the same as PostgreSQL would, within
a second of a write; until then PostgreSQL answers, so a write is searchable at once."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fastapi import FastAPI

from tests.conftest import AccountContext

FRESH_WITHIN_S = 1.0


async def search(account: AccountContext, text: str, *, token: str | None = None,
                 **params: Any) -> tuple[dict[str, Any], str]:
    """The answer and the engine that found it (``Server-Timing: repo;…;desc=<engine>``)."""
    response = await account.get("/api/tickets", params={"search": text, **params}, token=token)
    assert response.status_code == 200, response.text
    engine = re.search(r"repo;dur=[0-9.]+;desc=(\w+)", response.headers["Server-Timing"])
    assert engine is not None, response.headers["Server-Timing"]
    return response.json(), engine.group(1)


async def from_the_index(account: AccountContext, text: str, **params: Any) -> tuple[dict[str, Any], float]:
    """The first answer the index gives, and how long it took to come."""
    started = time.monotonic()
    while True:
        body, engine = await search(account, text, **params)
        if engine == "tantivy":
            return body, time.monotonic() - started
        assert time.monotonic() - started < 10, "the index never caught up"
        await asyncio.sleep(0.02)


def numbers(body: dict[str, Any]) -> list[str]:
    return [t["ticketNumber"] for t in body["tickets"]]


async def test_a_write_is_searchable_at_once_and_from_the_index_within_a_second(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Tachometer stuck", description="Needle never moves")
    body, _ = await search(account, "tachometer")
    assert numbers(body) == [ticket["ticketNumber"]]  # at once, whichever engine answered

    body, waited = await from_the_index(account, "tachometer")
    assert numbers(body) == [ticket["ticketNumber"]] and waited < FRESH_WITHIN_S

    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Replaced the odometer cable"})
    body, _ = await search(account, "odometer")
    assert numbers(body) == [ticket["ticketNumber"]]
    body, waited = await from_the_index(account, "odometer")
    assert numbers(body) == [ticket["ticketNumber"]] and waited < FRESH_WITHIN_S


async def test_the_index_answers_what_postgresql_answers(account: AccountContext, api_app: FastAPI) -> None:
    """Words, prefixes, phrases, exclusions, ``or``, status and priority filters, every order the
    index holds, pages: the same tickets, totals and snippets from both engines."""
    specs = [("Printer jam in tray two", "Paper keeps jamming", "low", None),
             ("Printer offline", "The office printer shows offline", "high", "The toner was replaced"),
             ("Invoice missing", "Customer asks for the March invoice", "urgent", "Resent the invoice"),
             ("Password reset emails never arrive", "Reset link expired", "medium", None),
             ("Scanner jam", "Scanner jams on every page", "high", "Printer driver updated too"),
             ("Refund request", "Refund the printer purchase", "urgent", None)]
    for subject, description, priority, comment in specs:
        ticket = await account.create_ticket(subject=subject, description=description, priority=priority)
        if comment:
            await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": comment})
        if priority == "urgent":
            await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})
    await account.post(f"/api/tickets/{ticket['id']}/comments",
                       json={"body": "Note: printer refund approved by finance", "isInternal": True})
    searches = [
        ("printer", {}), ("print", {}), ("printer jam", {}), ("jam", {"sort": "-createdAt"}),
        ('"printer offline"', {}), ("printer -toner", {}), ("invoice or refund", {}),
        ("printer", {"status": "in_progress"}), ("printer", {"priority": "high,urgent"}),
        ("printer", {"sort": "-updatedAt"}), ("printer", {"sort": "priority"}),
        ("printer", {"pageSize": 2}), ("printer", {"pageSize": 2, "page": 2}),
        ("printer", {"pageSize": 2, "page": 2, "sort": "-createdAt"}), ("finance", {}), ("the and of", {}),
    ]
    await from_the_index(account, "printer")
    for text, params in searches:
        indexed, engine = await search(account, text, **params)
        assert engine == "tantivy", (text, params)
        reader, api_app.state.search_index = api_app.state.search_index, None
        try:
            postgres, engine = await search(account, text, **params)
        finally:
            api_app.state.search_index = reader
        assert engine == "postgres"
        assert indexed == postgres, (text, params)
    assert len(numbers((await search(account, "printer"))[0])) == 4


async def test_accounts_and_internal_notes_stay_apart_in_the_index(account: AccountContext,
                                                                  other_account: AccountContext) -> None:
    mine = await account.create_ticket(subject="Gyroscope drift", description="Public words only")
    await account.post(f"/api/tickets/{mine['id']}/comments",
                       json={"body": "Internal: the gyroscope vendor is flamingo", "isInternal": True})
    await other_account.create_ticket(subject="Gyroscope flamingo drift")
    await from_the_index(account, "gyroscope")
    await from_the_index(other_account, "gyroscope")

    as_writer, engine = await search(account, "flamingo", token=account.tokens["write"])
    assert engine == "tantivy" and numbers(as_writer) == [mine["ticketNumber"]]
    as_reader, engine = await search(account, "flamingo", token=account.tokens["read"])
    assert engine == "tantivy" and as_reader["tickets"] == [] and as_reader["pagination"]["total"] == 0
    public, _ = await search(account, "gyroscope", token=account.tokens["read"])
    assert numbers(public) == [mine["ticketNumber"]] and "flamingo" not in public["tickets"][0]["searchSnippet"]


async def test_edited_and_deleted_tickets_change_in_the_index(account: AccountContext) -> None:
    keep = await account.create_ticket(subject="Carburetor flooding")
    gone = await account.create_ticket(subject="Carburetor leak")
    body, _ = await from_the_index(account, "carburetor")
    assert sorted(numbers(body)) == sorted([keep["ticketNumber"], gone["ticketNumber"]])

    assert (await account.delete(f"/api/tickets/{gone['id']}")).status_code == 200
    assert (await account.patch(f"/api/tickets/{keep['id']}", json={"subject": "Injector flooding"})).status_code == 200
    body, _ = await from_the_index(account, "carburetor")
    assert numbers(body) == []
    body, _ = await from_the_index(account, "injector")
    assert numbers(body) == [keep["ticketNumber"]]
