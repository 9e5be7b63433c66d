"""Merging tickets: comments copied to the primary in time order, tags united, secondaries
closed and pointing at the primary, timelines on all, per-ticket errors, and later comments to a
secondary landing on the primary."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import AccountContext


async def comment(account: AccountContext, ticket: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
    response = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def merge(account: AccountContext, primary: Any, secondaries: list[Any], *, token: str | None = None,
                **options: Any) -> Any:
    return await account.post("/api/tickets/merge", token=token,
                              json={"primaryTicketId": primary, "ticketIdsToMerge": secondaries, **options})


async def test_merging_three_tickets_unites_comments_in_time_order_and_tags(account: AccountContext) -> None:
    primary = await account.create_ticket(subject="Cannot log in", tags=["login"])
    first = await account.create_ticket(subject="Login broken again", tags=["Login", "urgent-customer"])
    second = await account.create_ticket(subject="Password reset fails", tags=["password"])
    await comment(account, primary, "p1: on it")
    await comment(account, first, "f1: still broken")
    await comment(account, second, "s1: reset mail mentions the quokka error")
    await comment(account, primary, "p2: deploying a fix")
    await comment(account, first, "f2: internal, customer is a VIP", isInternal=True)

    response = await merge(account, primary["ticketNumber"], [first["id"], second["ticketNumber"]])

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is True and result["errors"] == []
    assert result["primaryTicketId"] == primary["id"]
    assert result["mergedTicketIds"] == [first["id"], second["id"]]
    assert (result["commentsMerged"], result["attachmentsMerged"], result["secondaryTicketsClosed"]) == (3, 0, 2)
    assert first["ticketNumber"] in result["mergeNote"] and second["ticketNumber"] in result["mergeNote"]
    assert isinstance(result["executionTime"], int)

    thread = (await account.get(f"/api/tickets/{primary['id']}/comments")).json()["data"]
    assert [c["body"][:3] for c in thread] == ["p1:", "f1:", "s1:", "p2:", "f2:", "Mer"]
    assert [c["mergedFromTicketId"] for c in thread] == [None, first["id"], second["id"], None, first["id"], None]
    assert thread[-1]["isInternal"] is True and thread[-1]["authorType"] == "system"
    public = (await account.get(f"/api/tickets/{primary['id']}/comments", token=account.tokens["read"])).json()["data"]
    assert "f2:" not in [c["body"][:3] for c in public]

    merged = (await account.get(f"/api/tickets/{primary['id']}")).json()
    assert merged["tags"] == ["login", "urgent-customer", "password"]
    assert merged["status"] == "open" and merged["mergedIntoTicketId"] is None
    for secondary in (first, second):
        after = (await account.get(f"/api/tickets/{secondary['id']}")).json()
        assert after["status"] == "closed" and after["mergedIntoTicketId"] == primary["id"]
        own = (await account.get(f"/api/tickets/{secondary['id']}/comments")).json()["data"]
        assert own and all(c["ticketId"] == secondary["id"] for c in own)  # copied, not moved
        events = [e["eventType"] for e in (await account.get(f"/api/tickets/{secondary['id']}/timeline")).json()["data"]]
        assert "ticket_merged" in events and "status_changed" in events
    primary_events = (await account.get(f"/api/tickets/{primary['id']}/timeline")).json()["data"]
    assert [e["data"]["ticketId"] for e in primary_events if e["eventType"] == "ticket_merged_in"] == [
        first["id"], second["id"]]

    # The primary's workflow knows its new version: If-Match with it is accepted.
    patched = await account.patch(f"/api/tickets/{primary['id']}", json={"priority": "high"},
                                  headers={"If-Match": str(merged["version"])})
    assert patched.status_code == 200, patched.text

    # Search finds the primary by a word said only on a secondary.
    found = (await account.get("/api/tickets", params={"search": "quokka"})).json()["tickets"]
    assert found[0]["id"] in (primary["id"], second["id"]) and primary["id"] in [t["id"] for t in found]


async def test_a_comment_to_a_merged_ticket_lands_on_the_primary(account: AccountContext) -> None:
    primary = await account.create_ticket(subject="Primary")
    secondary = await account.create_ticket(subject="Duplicate")
    assert (await merge(account, primary["id"], [secondary["id"]])).status_code == 200

    posted = await comment(account, secondary, "Any news?", authorType="customer")

    assert posted["ticketId"] == primary["id"]
    bodies = [c["body"] for c in (await account.get(f"/api/tickets/{primary['id']}/comments")).json()["data"]]
    assert bodies[-1] == "Any news?"
    assert (await account.get(f"/api/tickets/{secondary['id']}")).json()["status"] == "closed"


async def test_a_failing_secondary_is_reported_and_left_untouched(account: AccountContext) -> None:
    primary = await account.create_ticket(subject="Primary")
    closed = await account.create_ticket(subject="Closed one", tags=["old"])
    await comment(account, closed, "closed talk")
    assert (await account.patch(f"/api/tickets/{closed['id']}", json={"status": "closed"})).status_code == 200
    fine = await account.create_ticket(subject="Fine one")
    closed_before = (await account.get(f"/api/tickets/{closed['id']}")).json()

    result = (await merge(account, primary["id"], [closed["id"], fine["id"]], addMergeNote=False)).json()

    assert result["success"] is False and result["mergedTicketIds"] == [fine["id"]]
    assert [(e["ticketId"], e["code"]) for e in result["errors"]] == [(closed["id"], "ticket_closed")]
    assert result["mergeNote"] is None and result["secondaryTicketsClosed"] == 1
    assert (await account.get(f"/api/tickets/{closed['id']}")).json() == closed_before
    after = (await account.get(f"/api/tickets/{primary['id']}")).json()
    assert after["tags"] == [] and (await account.get(f"/api/tickets/{primary['id']}/comments")).json()["data"] == []


async def test_merge_requests_that_cannot_work_are_refused_whole(account: AccountContext,
                                                                 other_account: AccountContext) -> None:
    primary = await account.create_ticket(subject="Primary")
    secondary = await account.create_ticket(subject="Secondary")
    foreign = await other_account.create_ticket(subject="Elsewhere")

    empty = await merge(account, primary["id"], [])
    assert empty.status_code == 422 and empty.json()["details"][0]["field"] == "ticketIdsToMerge"
    itself = await merge(account, primary["id"], [secondary["id"], primary["id"]])
    assert itself.status_code == 422
    assert (await merge(account, primary["id"], [foreign["id"]])).status_code == 404
    assert (await merge(account, foreign["id"], [secondary["id"]])).status_code == 404
    assert (await merge(account, primary["id"], [secondary["id"]], token=account.tokens["read"])).status_code == 403
    assert (await merge(account, primary["id"], [secondary["id"]], colour="red")).status_code == 422

    assert (await merge(account, primary["id"], [secondary["id"]], closeSecondaryTickets=False)).status_code == 200
    kept_open = (await account.get(f"/api/tickets/{secondary['id']}")).json()
    assert kept_open["status"] == "open" and kept_open["mergedIntoTicketId"] == primary["id"]
    again = await merge(account, primary["id"], [secondary["id"]])
    assert again.status_code == 422 and again.json()["error"] == "already_merged"
    third = await account.create_ticket(subject="Third")
    into_merged = await merge(account, secondary["id"], [third["id"]])
    assert into_merged.status_code == 422 and into_merged.json()["error"] == "already_merged"

    closed_primary = await account.create_ticket(subject="Closed primary")
    assert (await account.patch(f"/api/tickets/{closed_primary['id']}", json={"status": "closed"})).status_code == 200
    refused = await merge(account, closed_primary["id"], [third["id"]])
    assert refused.status_code == 409 and refused.json()["error"] == "ticket_closed"


async def test_concurrent_merges_into_each_other_never_deadlock(account: AccountContext) -> None:
    a = await account.create_ticket(subject="A")
    b = await account.create_ticket(subject="B")
    results = await asyncio.gather(merge(account, a["id"], [b["id"]]), merge(account, b["id"], [a["id"]]))
    statuses = sorted(r.status_code for r in results)
    bodies = [r.json() for r in results if r.status_code == 200]
    merged = [body for body in bodies if body["mergedTicketIds"]]
    assert len(merged) == 1, (statuses, bodies)


async def attach(account: AccountContext, ticket: dict[str, Any], content: bytes, name: str) -> dict[str, Any]:
    response = await account.post(f"/api/tickets/{ticket['id']}/attachments",
                                  files={"file": (name, content, "application/pdf")})
    assert response.status_code == 201, response.text
    return response.json()


async def attachments_of(account: AccountContext, ticket: dict[str, Any]) -> list[dict[str, Any]]:
    return (await account.get(f"/api/tickets/{ticket['id']}/attachments")).json()["data"]


async def test_merging_shows_the_secondaries_attachments_on_the_primary_each_content_once(
        account: AccountContext) -> None:
    invoice, photo, contract = b"%PDF invoice 1001\n" * 50, b"\x89PNG photo of the terminal" * 40, b"%PDF contract" * 30
    primary = await account.create_ticket(subject="Refund for order 1001")
    first = await account.create_ticket(subject="Refund please")
    second = await account.create_ticket(subject="Where is my refund")
    await attach(account, primary, invoice, "invoice.pdf")
    await attach(account, first, invoice, "invoice-again.pdf")  # the primary holds these bytes already
    await attach(account, first, photo, "terminal.png")
    await attach(account, second, photo, "photo.png")  # the first secondary brings the same photo
    await attach(account, second, contract, "contract.pdf")
    await attach(account, second, contract, "contract-copy.pdf")  # twice on the same secondary

    result = (await merge(account, primary["id"], [first["id"], second["id"]])).json()

    assert result["success"] is True and result["attachmentsMerged"] == 2, result
    on_primary = await attachments_of(account, primary)
    assert [(a["fileName"], a["mergedFromTicketId"]) for a in on_primary] == [
        ("invoice.pdf", None), ("terminal.png", first["id"]), ("contract.pdf", second["id"])]
    assert all(a["ticketId"] == primary["id"] for a in on_primary)
    assert len({a["sha256"] for a in on_primary}) == 3
    after = (await account.get(f"/api/tickets/{primary['id']}")).json()
    assert after["attachmentCount"] == 3
    copied = on_primary[1]
    download = await account.get(f"/api/tickets/{primary['id']}/attachments/{copied['id']}/content")
    assert download.status_code == 200 and download.content == photo
    # Copied, not moved: each secondary keeps its own record.
    assert [a["fileName"] for a in await attachments_of(account, first)] == ["invoice-again.pdf", "terminal.png"]
    assert len(await attachments_of(account, second)) == 3
    timeline = (await account.get(f"/api/tickets/{primary['id']}/timeline")).json()["data"]
    assert [e["data"]["attachmentsMerged"] for e in timeline if e["eventType"] == "ticket_merged_in"] == [1, 1]
    assert [e["eventType"] for e in timeline].count("attachment_added") == 1  # only the primary's own upload


async def test_merging_without_attachments_leaves_them_on_the_secondary(account: AccountContext) -> None:
    primary = await account.create_ticket(subject="Primary")
    secondary = await account.create_ticket(subject="Secondary")
    await attach(account, secondary, b"%PDF statement" * 20, "statement.pdf")

    result = (await merge(account, primary["id"], [secondary["id"]], mergeAttachments=False)).json()

    assert result["success"] is True and result["attachmentsMerged"] == 0
    assert await attachments_of(account, primary) == []
    assert (await account.get(f"/api/tickets/{primary['id']}")).json()["attachmentCount"] == 0
