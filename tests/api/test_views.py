"""Saved views: named filters + sort owned by a user, optionally shared with the account, and
the tickets they show with a count."""

from __future__ import annotations

from pulse.db import SessionFactory
from pulse.services.auth import issue_token
from tests.conftest import AccountContext


async def colleague_token(account: AccountContext, sessions: SessionFactory) -> str:
    """A second agent of the same account with read + write."""
    user = (await account.post("/api/users", json={"name": "Colleague"})).json()
    async with sessions() as session, session.begin():
        _, token = await issue_token(session, account_id=account.account_id, user_id=user["id"], name="colleague",
                                     permissions=["readSupport", "writeSupport"])
    return token


async def test_a_view_lists_its_tickets_in_its_order_with_a_count(account: AccountContext) -> None:
    low = await account.create_ticket(subject="Low one", priority="low", tags=["billing"])
    urgent = await account.create_ticket(subject="Urgent one", priority="urgent", tags=["billing"])
    high = await account.create_ticket(subject="High one", priority="high", tags=["billing"])
    await account.create_ticket(subject="Not billing", priority="urgent")

    created = await account.post("/api/views", json={
        "name": "Billing queue", "filters": {"tags": ["billing"], "priority": ["urgent", "high", "low"]},
        "sort": ["priority", "+createdAt"],
    })
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["filters"] == {"tags": "billing", "priority": "urgent,high,low"}
    assert view["sort"] == "priority,+createdAt" and view["shared"] is False
    assert view["ownerUserId"] == account.admin_user_id and view["version"] == 1

    page = await account.get(f"/api/views/{view['id']}/tickets", params={"pageSize": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert [t["id"] for t in body["tickets"]] == [urgent["id"], high["id"]]
    assert body["pagination"] == {"page": 1, "pageSize": 2, "total": 3, "totalPages": 2}
    assert body["view"]["id"] == view["id"]
    second = (await account.get(f"/api/views/{view['id']}/tickets", params={"page": 2, "pageSize": 2})).json()
    assert [t["id"] for t in second["tickets"]] == [low["id"]]

    listed = (await account.get("/api/views", params={"includeCounts": "true"})).json()
    assert [(v["name"], v["ticketCount"], v["ticketCountIsEstimate"]) for v in listed["data"]] == [("Billing queue", 3, False)]


async def test_a_search_view_carries_snippets(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Refund for order 1234")
    view = (await account.post("/api/views", json={"name": "Refunds", "filters": {"search": "refund"}})).json()
    body = (await account.get(f"/api/views/{view['id']}/tickets")).json()
    assert [t["id"] for t in body["tickets"]] == [ticket["id"]]
    assert body["tickets"][0]["searchSnippet"].startswith("<mark>Refund</mark>")


async def test_shared_views_are_visible_to_the_account_but_only_the_owner_changes_them(
        account: AccountContext, other_account: AccountContext, sessions: SessionFactory) -> None:
    colleague = await colleague_token(account, sessions)
    shared = (await account.post("/api/views", json={"name": "Team queue", "filters": {"status": "open"},
                                                     "shared": True})).json()
    private = (await account.post("/api/views", json={"name": "My queue", "filters": {"status": "open"}})).json()

    seen = (await account.get("/api/views", token=colleague)).json()
    assert [v["id"] for v in seen["data"]] == [shared["id"]]
    assert (await account.get(f"/api/views/{private['id']}", token=colleague)).status_code == 404
    assert (await account.get(f"/api/views/{shared['id']}/tickets", token=colleague)).status_code == 200

    body = {"name": "Hijacked", "filters": {}, "shared": True}
    assert (await account.request("PUT", f"/api/views/{shared['id']}", json=body, token=colleague)).status_code == 403
    assert (await account.delete(f"/api/views/{shared['id']}", token=colleague)).status_code == 403
    # Another account sees none of them.
    assert (await other_account.get(f"/api/views/{shared['id']}")).status_code == 404
    assert (await other_account.get("/api/views")).json()["data"] == []


async def test_views_are_replaced_with_versions_and_deleted(account: AccountContext) -> None:
    view = (await account.post("/api/views", json={"name": "Open", "filters": {"status": "open"}})).json()
    replaced = await account.request("PUT", f"/api/views/{view['id']}", json={
        "name": "Waiting", "filters": {"status": "waiting_customer"}, "sort": "-updatedAt", "shared": True,
    }, headers={"If-Match": "1"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2 and replaced.json()["filters"] == {"status": "waiting_customer"}
    stale = await account.request("PUT", f"/api/views/{view['id']}", json={"name": "x"}, headers={"If-Match": "1"})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"

    assert (await account.delete(f"/api/views/{view['id']}")).status_code == 204
    assert (await account.get(f"/api/views/{view['id']}")).status_code == 404


async def test_invalid_view_filters_and_sorts_are_422_naming_each(account: AccountContext) -> None:
    response = await account.post("/api/views", json={
        "name": "Broken", "filters": {"colour": "red", "priority": "whenever", "tags": {"nested": 1}}, "sort": "-mood",
    })
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"filters.colour", "filters.priority", "filters.tags", "sort"}
    unknown = await account.post("/api/views", json={"name": "Broken", "filters": {"colour": "red"}})
    assert unknown.status_code == 422
    assert unknown.json()["details"][0]["field"] == "filters.colour"
    assert "assignedToTeamId" in unknown.json()["details"][0]["message"]
    assert (await account.post("/api/views", json={"name": "", "filters": {}})).status_code == 422
    assert (await account.post("/api/views", json={"name": "x", "owner": 3})).status_code == 422
