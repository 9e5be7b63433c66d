"""Full-text search over subject, description and every comment: ranked, prefix-matching,
with snippets, internal notes only for writeSupport, and always current."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.domain.search import build_search_query
from tests.conftest import AccountContext


async def search(account: AccountContext, text: str, *, token: str | None = None, **params: Any) -> dict[str, Any]:
    response = await account.get("/api/tickets", params={"search": text, **params}, token=token)
    assert response.status_code == 200, response.text
    return response.json()


def numbers(body: dict[str, Any]) -> list[str]:
    return [t["ticketNumber"] for t in body["tickets"]]


async def test_search_covers_subject_description_and_comments_ranked_subject_first(account: AccountContext) -> None:
    in_comment = await account.create_ticket(subject="Checkout slow", description="Pages take ages")
    await account.post(f"/api/tickets/{in_comment['id']}/comments", json={"body": "Customer mentions the flux capacitor"})
    in_description = await account.create_ticket(subject="Odd noise", description="The flux capacitor hums")
    in_subject = await account.create_ticket(subject="Flux capacitor broken", description="Nothing works")
    await account.create_ticket(subject="Unrelated", description="Nothing to see")

    body = await search(account, "flux capacitor")

    assert numbers(body) == [in_subject["ticketNumber"], in_description["ticketNumber"], in_comment["ticketNumber"]]
    assert body["pagination"] == {"page": 1, "pageSize": 50, "total": 3, "totalPages": 3 // 50 + 1}
    snippets = {t["id"]: t["searchSnippet"] for t in body["tickets"]}
    assert snippets[in_subject["id"]] == "<mark>Flux</mark> <mark>capacitor</mark> broken"
    assert "<mark>flux</mark> <mark>capacitor</mark>" in snippets[in_comment["id"]]
    assert "<mark>flux</mark>" in snippets[in_description["id"]]


async def test_the_last_word_matches_as_a_prefix_and_stemming_applies(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Password reset emails never arrive")
    assert numbers(await search(account, "passw")) == [ticket["ticketNumber"]]
    assert numbers(await search(account, "email never arriving")) == [ticket["ticketNumber"]]
    assert numbers(await search(account, "passw reset")) == []  # only the last word is a prefix
    assert numbers(await search(account, '"reset emails"')) == [ticket["ticketNumber"]]
    assert numbers(await search(account, '"emails reset"')) == []
    assert numbers(await search(account, "password -arrive")) == []


async def test_internal_notes_are_searched_only_for_callers_with_write_support(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Invoice question", description="Where is my invoice?")
    await account.post(f"/api/tickets/{ticket['id']}/comments",
                       json={"body": "Internal: customer is on the zebrafish discount", "isInternal": True})

    as_writer = await search(account, "zebrafish", token=account.tokens["write"])
    as_reader = await search(account, "zebrafish", token=account.tokens["read"])

    assert numbers(as_writer) == [ticket["ticketNumber"]]
    assert "<mark>zebrafish</mark>" in as_writer["tickets"][0]["searchSnippet"]
    assert as_reader["tickets"] == [] and as_reader["pagination"]["total"] == 0
    # A reader still finds the ticket by its public words, and the snippet shows no note.
    public = await search(account, "invoice", token=account.tokens["read"])
    assert numbers(public) == [ticket["ticketNumber"]]
    assert "zebrafish" not in public["tickets"][0]["searchSnippet"]
    # Both documents are rebuilt when the text changes: the note stays visible to writers only.
    assert (await account.patch(f"/api/tickets/{ticket['id']}", json={"description": "Billing address"})).status_code == 200
    assert numbers(await search(account, "zebrafish", token=account.tokens["write"])) == [ticket["ticketNumber"]]
    assert numbers(await search(account, "zebrafish", token=account.tokens["read"])) == []
    assert numbers(await search(account, "billing address", token=account.tokens["read"])) == [ticket["ticketNumber"]]


async def test_search_stays_current_when_comments_arrive_and_text_changes(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Login loop", description="Redirects forever")
    assert numbers(await search(account, "kumquat")) == []

    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Happens only with kumquat browser"})
    assert numbers(await search(account, "kumquat")) == [ticket["ticketNumber"]]

    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Sign-in cycle"})
    assert patched.status_code == 200, patched.text
    assert numbers(await search(account, "login")) == []
    assert numbers(await search(account, "sign-in cycle")) == [ticket["ticketNumber"]]
    assert numbers(await search(account, "kumquat")) == [ticket["ticketNumber"]]  # comments kept


async def test_deleted_tickets_leave_search(account: AccountContext) -> None:
    keep = await account.create_ticket(subject="Gearbox rattle")
    gone = await account.create_ticket(subject="Gearbox leak")
    assert sorted(numbers(await search(account, "gearbox"))) == sorted([keep["ticketNumber"], gone["ticketNumber"]])

    assert (await account.delete(f"/api/tickets/{gone['id']}")).status_code == 200
    assert numbers(await search(account, "gearbox")) == [keep["ticketNumber"]]


async def test_a_ticket_number_finds_that_ticket_first(account: AccountContext) -> None:
    target = await account.create_ticket(subject="Original report")
    mention = await account.create_ticket(subject="Follow-up", description=f"Same as {target['ticketNumber']}")
    await account.create_ticket(subject="Something else")

    body = await search(account, target["ticketNumber"])
    assert numbers(body)[0] == target["ticketNumber"]
    assert mention["ticketNumber"] in numbers(body)
    assert body["pagination"]["total"] == len(body["tickets"])
    lower = await search(account, target["ticketNumber"].lower())
    assert numbers(lower)[0] == target["ticketNumber"]


async def test_search_combines_with_filters_sorting_and_paging(account: AccountContext) -> None:
    created = [await account.create_ticket(subject=f"Printer jam number {i}", priority=priority)
               for i, priority in enumerate(["low", "high", "urgent", "high", "low"])]
    await account.create_ticket(subject="Printer jam elsewhere", priority="high", tags=["other"])

    high = await search(account, "printer jam", priority="high,urgent", sort="priority,+createdAt")
    assert numbers(high)[:3] == [created[2]["ticketNumber"], created[1]["ticketNumber"], created[3]["ticketNumber"]]
    assert len(high["tickets"]) == 4 and all("searchSnippet" in t for t in high["tickets"])

    first = await search(account, "printer", pageSize=4)
    second = await search(account, "printer", pageSize=4, page=2)
    assert first["pagination"]["total"] == 6 and first["pagination"]["totalPages"] == 2
    assert len(first["tickets"]) == 4 and len(second["tickets"]) == 2
    assert not set(numbers(first)) & set(numbers(second))


async def test_any_search_text_is_safe_and_snippets_escape_html(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Widget <script>alert(1)</script> broken")
    for text in ["'\"\\!&|:*()<->", "the and of", "-", '"', "a:*B & !c", "x" * 300, "ünïcödé 日本語 – —"]:
        body = await search(account, text)
        assert isinstance(body["tickets"], list)
    snippet = (await search(account, "widget"))["tickets"][0]["searchSnippet"]
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet and "<mark>Widget</mark>" in snippet
    too_long = await account.get("/api/tickets", params={"search": "x" * 1001})
    assert too_long.status_code == 422 and too_long.json()["details"][0]["field"] == "search"
    assert ticket["id"]


def test_whatever_is_typed_becomes_a_valid_tsquery(database_url: str) -> None:
    """The query builder quotes every operand: no input makes ``to_tsquery`` raise."""
    with psycopg.connect(database_url, autocommit=True) as connection:

        @settings(max_examples=300, deadline=None)
        @given(st.text(max_size=80) | st.text(alphabet="\"'\\!&|:*()<->- aAbB12", max_size=40))
        def check(raw: str) -> None:
            built = build_search_query(raw)
            if built is not None:
                for text in (built.every_weight, built.subject_only, built.description_only, built.prefix):
                    if text is not None:
                        connection.execute("SELECT to_tsquery('english', %s)", (text,))

        check()


async def test_a_nul_character_is_a_422_not_a_crash(account: AccountContext) -> None:
    response = await account.get("/api/tickets", params={"search": "a\x00b"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "search"


# Costs that make each way to a newest-first page the cheapest on a few dozen tickets.
NEWEST_FIRST_WAYS = {
    "read": {"TICKET_TEST_US": 100.0, "SLICE_SPARE": 100},
    "walk": {"TICKET_TEST_US": 0.001},
    "slice": {"SLICE_SPARE": 0.1},  # the planner expects ~1 match in a slice of two tickets
}


@pytest.mark.parametrize("way", NEWEST_FIRST_WAYS)
async def test_every_way_to_the_newest_matches_gives_the_same_ranked_pages(
    account: AccountContext, monkeypatch: Any, database_url: str, way: str
) -> None:
    """Newest first, a search page is found by reading every match, by testing the newest
    tickets one by one, or from a recent slice of the tickets, whichever the planner's estimates
    say is cheapest. Each way gives the newest matches, ranked, and the same pages. The costs are
    set so that a few dozen tickets take the way under test."""
    from pulse.repositories import ticket_lists

    monkeypatch.setattr(ticket_lists, "EXACT_MATCHES", 0)
    monkeypatch.setattr(ticket_lists, "RANK_WINDOW", 6)
    for name, value in NEWEST_FIRST_WAYS[way].items():
        monkeypatch.setattr(ticket_lists, name, value)
    chosen: list[str] = []
    plan = ticket_lists.TicketLists._newest_first_plan

    async def recording_plan(self: Any, *args: Any) -> Any:
        newest = await plan(self, *args)
        chosen.append(newest.way)
        return newest

    monkeypatch.setattr(ticket_lists.TicketLists, "_newest_first_plan", recording_plan)
    matching = []
    for i in range(48):
        if i % 2:
            await account.create_ticket(subject=f"Desk lamp flickers {i}")
        else:
            subject = f"Walrus alert {i}" if i % 8 == 0 else f"Printer {i}"
            matching.append(await account.create_ticket(subject=subject, description="the walrus ate the toner"))
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("ANALYZE tickets")

    body = await search(account, "walrus", pageSize=3)
    page_two = await search(account, "walrus", pageSize=3, page=2)

    newest_window = {t["ticketNumber"] for t in matching[-6:]}
    in_subject = {t["ticketNumber"] for t in matching[-6:] if t["subject"].startswith("Walrus")}
    assert set(numbers(body)) | set(numbers(page_two)) == newest_window
    assert in_subject <= set(numbers(body))  # ranked: subject matches first
    assert not set(numbers(body)) & set(numbers(page_two))
    assert body["pagination"]["total"] >= len(matching) - 1 or body["pagination"].get("totalIsEstimate")
    by_date = await search(account, "walrus", pageSize=4, sort="-createdAt")
    assert numbers(by_date) == [t["ticketNumber"] for t in reversed(matching[-4:])]
    assert set(chosen) == {way}
