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
                for text in (built.every_weight, built.subject_only, built.description_only, built.prefix,
                             built.without_prefix):
                    if text is not None:
                        connection.execute("SELECT to_tsquery('english', %s)", (text,))

        check()


async def test_a_nul_character_is_a_422_not_a_crash(account: AccountContext) -> None:
    response = await account.get("/api/tickets", params={"search": "a\x00b"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "search"


def test_the_cheapest_way_to_the_newest_matches_follows_the_measured_costs() -> None:
    """At a million tickets (bench/README.md): a rare word is read in full, a word in 1 % of the
    tickets is taken from a recent slice, the same with a three-letter prefix whose GIN scan
    alone costs 24 ms is walked for, so is a word in 3 % (its matches are dense). Among the 1 in
    200 tickets a filter keeps, its index is walked when the words are common there, and the
    matches are read when they are not."""
    from pulse.repositories.ticket_lists import READ, SLICE, WALK, cheapest_way

    million = {"tickets": 1_000_000, "filtered": 1_000_000, "needed": 100}
    assert cheapest_way(word_matches=50, matches=50, **million) == READ
    assert cheapest_way(word_matches=10_000, matches=10_000, **million, prefix_postings=10_000) == SLICE
    assert cheapest_way(word_matches=10_000, matches=10_000, **million, prefix_postings=80_000) == WALK
    assert cheapest_way(word_matches=30_000, matches=30_000, **million, prefix_postings=30_000) == WALK
    filtered = {**million, "filtered": 5_000}
    assert cheapest_way(word_matches=30_000, matches=150, **filtered) == WALK
    assert cheapest_way(word_matches=8_000, matches=40, **filtered) == READ


@pytest.fixture
def exact_estimates(monkeypatch: Any, postgres_search: None) -> None:
    """PostgreSQL's search, its planner's guesses replaced by the true counts (same conditions,
    counted): on a few dozen tickets among other tests' the guesses are too rough to size a walk
    or a slice."""
    from sqlalchemy import func, literal, select

    from pulse.repositories import ticket_lists

    async def counted(self: Any, conditions: list[Any]) -> int:
        rows = select(literal(1)).where(*conditions).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(rows)) or 0)

    monkeypatch.setattr(ticket_lists.TicketLists, "estimate", counted)


def record_ways(monkeypatch: Any, way: str | None = None) -> list[str]:
    """What found the search pages, in order: "read" (every match), "walk" (the newest tickets
    tested), "slice" (the matches in a recent slice), "index" (a walk of the newest-first index);
    optionally with ``way`` forced as the cheapest."""
    from pulse.repositories import ticket_lists

    lists = ticket_lists.TicketLists
    recent, tested, read, ranked = (lists._from_recent_matches, lists._from_newest_tested, lists._from_matches,
                                    lists._ranked)
    taken: list[str] = []
    in_recent: list[bool] = []

    async def recording_recent(self: Any, *args: Any) -> Any:
        in_recent.append(True)
        try:
            return await recent(self, *args)
        finally:
            in_recent.pop()

    async def recording_tested(self: Any, *args: Any) -> Any:
        taken.append("walk")
        return await tested(self, *args)

    async def recording_read(self: Any, *args: Any) -> Any:
        taken.append("slice" if in_recent else "read")
        return await read(self, *args)

    async def recording_ranked(self: Any, *args: Any) -> Any:
        taken.append("index")
        return await ranked(self, *args)

    monkeypatch.setattr(lists, "_from_recent_matches", recording_recent)
    monkeypatch.setattr(lists, "_from_newest_tested", recording_tested)
    monkeypatch.setattr(lists, "_from_matches", recording_read)
    monkeypatch.setattr(lists, "_ranked", recording_ranked)
    if way is not None:
        monkeypatch.setattr(ticket_lists, "cheapest_way", lambda **_: way)
    return taken


@pytest.mark.parametrize("way", ["read", "walk", "slice"])
async def test_every_way_to_the_newest_matches_gives_the_same_ranked_pages(
    account: AccountContext, monkeypatch: Any, database_url: str, exact_estimates: None, way: str
) -> None:
    """Newest first, a search page is found by reading every match, by testing the newest
    tickets one by one, or from a recent slice of the tickets, whichever the planner's estimates
    say is cheapest. Each way gives the newest matches, ranked, and the same pages."""
    from pulse.repositories import ticket_lists

    monkeypatch.setattr(ticket_lists, "RANK_WINDOW", 6)
    monkeypatch.setattr(ticket_lists, "SLICE_SPARE", 2)  # a slice of 24 of the 48 tickets
    taken = record_ways(monkeypatch, way)
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
    assert taken == {"read": ["read"] * 3, "walk": ["walk"] * 3, "slice": ["slice"] * 3}[way]


async def test_a_way_that_finds_too_few_or_too_many_matches_hands_over_to_another(
    account: AccountContext, monkeypatch: Any, exact_estimates: None
) -> None:
    """Old matches: the newest tickets tested hold none, so every match is read (exact total).
    A slice holding more matches than a read may take: the newest-first index is walked instead.
    A page past the end of matches read in full still has their exact total."""
    from pulse.repositories import ticket_lists

    monkeypatch.setattr(ticket_lists, "RANK_WINDOW", 4)
    old = [await account.create_ticket(subject=f"Narwhal sighting {i}") for i in range(6)]
    for i in range(30):
        await account.create_ticket(subject=f"Desk lamp flickers {i}")
    new = [await account.create_ticket(subject=f"Orca sighting {i}") for i in range(6)]

    monkeypatch.setattr(ticket_lists, "WALK_PROBE", 10)
    taken = record_ways(monkeypatch, "walk")
    body = await search(account, "narwhal", pageSize=4)
    assert set(numbers(body)) == {t["ticketNumber"] for t in old[-4:]}
    assert body["pagination"]["total"] == 6 and not body["pagination"].get("totalIsEstimate")
    assert taken == ["walk", "read"]

    monkeypatch.setattr(ticket_lists, "MATCHES_READ_CAP", 2)
    monkeypatch.setattr(ticket_lists, "SLICE_SPARE", 1)
    taken = record_ways(monkeypatch, "slice")
    body = await search(account, "orca", pageSize=4)
    assert set(numbers(body)) == {t["ticketNumber"] for t in new[-4:]}
    assert taken == ["slice", "index"]

    monkeypatch.undo()
    taken = record_ways(monkeypatch, "read")
    past_the_end = await search(account, "narwhal", pageSize=4, page=3)
    assert past_the_end["tickets"] == []
    assert past_the_end["pagination"]["total"] == 6 and not past_the_end["pagination"].get("totalIsEstimate")
    assert taken == ["read"]


@pytest.mark.parametrize("way", ["read", "slice"])
async def test_a_prefix_in_most_tickets_is_checked_on_the_other_words_matches_with_the_same_pages(
    account: AccountContext, monkeypatch: Any, exact_estimates: None, way: str
) -> None:
    """When the GIN scan of the last word's prefix would cost more than testing the tickets that
    hold the other words (``login:*`` is in most tickets, ``quokka`` in a few), those are read and
    each is checked against the whole search: the pages and totals are those of scanning it."""
    from pulse.repositories import ticket_lists

    monkeypatch.setattr(ticket_lists, "RANK_WINDOW", 4)
    monkeypatch.setattr(ticket_lists, "SLICE_SPARE", 2)
    matching = []
    for i in range(24):
        if i % 3:
            await account.create_ticket(subject=f"Login trouble {i}")
        else:
            matching.append(await account.create_ticket(subject=f"Login trouble {i}", description="a quokka"))
    await account.create_ticket(subject="A quokka without the other word")

    read = ticket_lists.TicketLists._from_matches
    read_with: list[str] = []

    async def recording(self: Any, conditions: list[Any], *args: Any) -> Any:
        read_with.append(" ".join(str(condition) for condition in conditions))
        return await read(self, conditions, *args)

    monkeypatch.setattr(ticket_lists.TicketLists, "_from_matches", recording)
    monkeypatch.setattr(ticket_lists, "cheapest_way", lambda **_: way)
    pages = {}
    for posting_us in (0.0, 1000.0):  # the prefix scanned, then checked
        monkeypatch.setattr(ticket_lists, "PREFIX_POSTING_US", posting_us)
        ranked = [await search(account, "quokka logi", pageSize=3, page=page) for page in (1, 2)]
        by_date = await search(account, "quokka logi", pageSize=5, sort="-createdAt")
        by_priority = await search(account, "quokka logi", pageSize=5, sort="priority")
        pages[posting_us] = [(numbers(body), body["pagination"]["total"]) for body in (*ranked, by_date, by_priority)]
        checked = ["ts_match_vq" in conditions for conditions in read_with]
        assert checked and all(checked) == (posting_us > 0) and any(checked) == (posting_us > 0)
        read_with.clear()
    assert pages[0.0] == pages[1000.0]
    assert set(pages[0.0][2][0]) == {t["ticketNumber"] for t in matching[-5:]}
    assert pages[0.0][2][1] == len(matching)

