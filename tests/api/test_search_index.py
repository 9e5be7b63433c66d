"""The default search engine, the tantivy index beside the API (``pulse.search_index``): it
answers searches as PostgreSQL would, with a ticket changed since it was indexed checked in
PostgreSQL instead, so a write is searchable at once; the index itself takes a write within a
second."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from pulse.db import SessionFactory
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


async def indexed(account: AccountContext, sessions: SessionFactory) -> float:
    """Waits until the index holds every change of the account's tickets; how long that took."""
    started = time.monotonic()
    while True:
        async with sessions() as session:
            waiting = await session.scalar(text("SELECT count(*) FROM search_index_queue WHERE account_id = :a"),
                                           {"a": account.account_id})
        if not waiting:
            return time.monotonic() - started
        assert time.monotonic() - started < 10, "the index never caught up"
        await asyncio.sleep(0.01)


async def both_engines(account: AccountContext, api_app: FastAPI, text_: str,
                       **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer the index gives and the one PostgreSQL alone gives."""
    indexed_body, engine = await search(account, text_, **params)
    assert engine == "tantivy", (text_, params)
    reader, api_app.state.search_index = api_app.state.search_index, None
    try:
        postgres, engine = await search(account, text_, **params)
    finally:
        api_app.state.search_index = reader
    assert engine == "postgres"
    return indexed_body, postgres


def numbers(body: dict[str, Any]) -> list[str]:
    return [t["ticketNumber"] for t in body["tickets"]]


async def test_a_write_is_searchable_at_once_and_indexed_within_a_second(account: AccountContext,
                                                                          sessions: SessionFactory) -> None:
    ticket = await account.create_ticket(subject="Tachometer stuck", description="Needle never moves")
    body, engine = await search(account, "tachometer")
    assert engine == "tantivy" and numbers(body) == [ticket["ticketNumber"]]  # checked in PostgreSQL meanwhile
    assert await indexed(account, sessions) < FRESH_WITHIN_S
    body, _ = await search(account, "tachometer")
    assert numbers(body) == [ticket["ticketNumber"]]  # from the index's own document

    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Replaced the odometer cable"})
    body, _ = await search(account, "odometer")
    assert numbers(body) == [ticket["ticketNumber"]]
    assert await indexed(account, sessions) < FRESH_WITHIN_S
    body, _ = await search(account, "odometer")
    assert numbers(body) == [ticket["ticketNumber"]]
    body, _ = await search(account, "needle")
    assert numbers(body) == [ticket["ticketNumber"]]


async def test_the_index_answers_what_postgresql_answers(account: AccountContext, api_app: FastAPI,
                                                        sessions: SessionFactory) -> None:
    """Words, prefixes, phrases, exclusions, ``or``, status and priority filters, every order the
    index holds, pages: the same tickets, totals and snippets from both engines, while changes
    wait to be indexed and once they are."""
    specs = [("Printer jam in tray two", "Paper keeps jamming", "low", None),
             ("Printer offline", "The office printer shows offline", "high", "The toner was replaced"),
             ("Invoice missing", "Customer asks for the March invoice", "urgent", "Resent the invoice"),
             ("Password reset emails never arrive", "Reset link expired", "medium", None),
             ("Scanner jam", "Scanner jams on every page", "high", "Printer driver updated too"),
             ("Refund request", "Refund the printer purchase", "urgent", None)]
    created = []
    for subject, description, priority, comment in specs:
        ticket = await account.create_ticket(subject=subject, description=description, priority=priority)
        created.append(ticket)
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
    await indexed(account, sessions)
    for text_, params in searches:
        from_index, postgres = await both_engines(account, api_app, text_, **params)
        assert from_index == postgres, (text_, params)
    assert len(numbers((await search(account, "printer"))[0])) == 4

    # Changed, not yet indexed: the index's stale documents are left out, the changed tickets checked.
    await account.patch(f"/api/tickets/{created[0]['id']}", json={"subject": "Copier jam in tray two"})
    await account.post(f"/api/tickets/{created[3]['id']}/comments", json={"body": "Printer prints blank pages"})
    for text_, params in searches:
        from_index, postgres = await both_engines(account, api_app, text_, **params)
        assert from_index == postgres, (text_, params)
    assert created[3]["ticketNumber"] in numbers((await search(account, "printer"))[0])
    assert created[0]["ticketNumber"] not in numbers((await search(account, "printer"))[0])


async def test_accounts_and_internal_notes_stay_apart_in_the_index(account: AccountContext,
                                                                  other_account: AccountContext,
                                                                  sessions: SessionFactory) -> None:
    mine = await account.create_ticket(subject="Gyroscope drift", description="Public words only")
    await account.post(f"/api/tickets/{mine['id']}/comments",
                       json={"body": "Internal: the gyroscope vendor is flamingo", "isInternal": True})
    await other_account.create_ticket(subject="Gyroscope flamingo drift")
    await indexed(account, sessions)
    await indexed(other_account, sessions)

    as_writer, engine = await search(account, "flamingo", token=account.tokens["write"])
    assert engine == "tantivy" and numbers(as_writer) == [mine["ticketNumber"]]
    as_reader, engine = await search(account, "flamingo", token=account.tokens["read"])
    assert engine == "tantivy" and as_reader["tickets"] == [] and as_reader["pagination"]["total"] == 0
    public, _ = await search(account, "gyroscope", token=account.tokens["read"])
    assert numbers(public) == [mine["ticketNumber"]] and "flamingo" not in public["tickets"][0]["searchSnippet"]


async def test_edited_and_deleted_tickets_change_in_the_index(account: AccountContext,
                                                             sessions: SessionFactory) -> None:
    keep = await account.create_ticket(subject="Carburetor flooding")
    gone = await account.create_ticket(subject="Carburetor leak")
    await indexed(account, sessions)
    body, _ = await search(account, "carburetor")
    assert sorted(numbers(body)) == sorted([keep["ticketNumber"], gone["ticketNumber"]])

    assert (await account.delete(f"/api/tickets/{gone['id']}")).status_code == 200
    assert (await account.patch(f"/api/tickets/{keep['id']}", json={"subject": "Injector flooding"})).status_code == 200
    for _ in range(2):  # waiting to be indexed, then indexed
        assert numbers((await search(account, "carburetor"))[0]) == []
        assert numbers((await search(account, "injector"))[0]) == [keep["ticketNumber"]]
        await indexed(account, sessions)
