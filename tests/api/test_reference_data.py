"""Reference data that tickets point at — users, teams, ticket types, ticket categories: CRUD,
versions and If-Match, validation, tenant isolation, deletes of records still in use, paging."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import AccountContext

KINDS = ["users", "teams", "ticket-types", "ticket-categories"]


def sample(kind: str, name: str = "Sample") -> dict[str, Any]:
    return {"users": {"name": name, "email": f"{name.lower().replace(' ', '.')}@example.com"},
            "teams": {"name": name}, "ticket-types": {"name": name},
            "ticket-categories": {"name": name, "description": "for sorting"}}[kind]


def bad_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "validation_error"
    return [detail["field"] for detail in body["details"]]


@pytest.mark.parametrize("kind", KINDS)
async def test_reference_records_are_created_read_updated_and_deleted(account: AccountContext, kind: str) -> None:
    created = await account.post(f"/api/{kind}", json=sample(kind, "First"))
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["name"] == "First" and row["version"] == 1 and row["id"] > 0
    assert row["createdAt"] and row["updatedAt"]
    path = f"/api/{kind}/{row['id']}"
    assert (await account.get(path)).json() == row
    assert (await account.get(path, token=account.tokens["read"])).status_code == 200

    renamed = await account.patch(path, json={"name": "Renamed"}, headers={"If-Match": "1"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed" and renamed.json()["version"] == 2
    assert renamed.json()["updatedAt"] >= row["updatedAt"]

    for kwargs in ({"json": {"name": "Stale"}, "headers": {"If-Match": "1"}}, {"json": {"name": "Stale", "version": 1}}):
        stale = await account.patch(path, **kwargs)
        assert stale.status_code == 409 and stale.json()["error"] == "version_conflict", stale.text
    in_body = await account.patch(path, json={"name": "Current", "version": 2})
    assert in_body.status_code == 200 and in_body.json()["version"] == 3
    unchanged = await account.patch(path, json={"name": "Current"})
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 3
    assert (await account.get(path)).json()["name"] == "Current"

    deleted = await account.delete(path)
    assert deleted.status_code == 204
    assert (await account.get(path)).status_code == 404
    assert (await account.patch(path, json={"name": "Ghost"})).status_code == 404
    assert (await account.delete(path)).status_code == 404
    assert row["id"] not in [r["id"] for r in (await account.get(f"/api/{kind}")).json()["data"]]


@pytest.mark.parametrize("kind", KINDS)
async def test_reference_writes_are_validated(account: AccountContext, kind: str) -> None:
    assert bad_fields(await account.post(f"/api/{kind}", json={})) == ["name"]
    assert bad_fields(await account.post(f"/api/{kind}", json={"name": ""})) == ["name"]
    assert bad_fields(await account.post(f"/api/{kind}", json={"name": "x" * 201})) == ["name"]
    assert bad_fields(await account.post(f"/api/{kind}", json={"name": "ok", "colour": "red"})) == ["colour"]
    row = (await account.post(f"/api/{kind}", json=sample(kind))).json()
    path = f"/api/{kind}/{row['id']}"
    assert bad_fields(await account.patch(path, json={"name": None})) == ["name"]
    assert bad_fields(await account.patch(path, json={"name": ""})) == ["name"]
    assert bad_fields(await account.patch(path, json={"owner": 1})) == ["owner"]
    assert bad_fields(await account.patch(path, json={"name": "ok"}, headers={"If-Match": "v1"})) == ["If-Match"]
    for missing in ("0", "99999999999999999999", "-4"):
        assert (await account.get(f"/api/{kind}/{missing}")).status_code in (404, 422), missing
    assert (await account.get(f"/api/{kind}/abc")).status_code == 422
    after = (await account.get(path)).json()
    assert after == row


async def test_user_fields_are_validated(account: AccountContext) -> None:
    user = (await account.post("/api/users", json={"name": "Linus", "role": "agent", "phone": "+1 555 0100"})).json()
    assert (user["role"], user["phone"], user["isActive"], user["email"]) == ("agent", "+1 555 0100", True, None)
    path = f"/api/users/{user['id']}"
    assert bad_fields(await account.post("/api/users", json={"name": "x", "email": "not-an-email"})) == ["email"]
    assert bad_fields(await account.patch(path, json={"email": "nope"})) == ["email"]
    for field in ("role", "isActive"):
        assert bad_fields(await account.patch(path, json={field: None})) == [field]
    deactivated = (await account.patch(path, json={"isActive": False, "email": "linus@example.com"})).json()
    assert deactivated["isActive"] is False and deactivated["email"] == "linus@example.com"
    assert deactivated["version"] == 2


async def test_names_of_types_and_categories_are_unique_per_account(
    account: AccountContext, other_account: AccountContext
) -> None:
    for kind in ("ticket-types", "ticket-categories"):
        first = (await account.post(f"/api/{kind}", json={"name": "Billing"})).json()
        duplicate = await account.post(f"/api/{kind}", json={"name": "Billing"})
        assert duplicate.status_code == 409 and "Billing" in duplicate.json()["message"], duplicate.text
        other = (await account.post(f"/api/{kind}", json={"name": "Other"})).json()
        clash = await account.patch(f"/api/{kind}/{other['id']}", json={"name": "Billing"})
        assert clash.status_code == 409, clash.text
        assert (await account.get(f"/api/{kind}/{other['id']}")).json()["name"] == "Other"
        # Another account may use the same name.
        assert (await other_account.post(f"/api/{kind}", json={"name": "Billing"})).status_code == 201
        assert (await account.get(f"/api/{kind}/{first['id']}")).status_code == 200


async def test_teams_have_a_manager_and_members(account: AccountContext, other_account: AccountContext) -> None:
    ada = (await account.post("/api/users", json={"name": "Ada"})).json()
    bob = (await account.post("/api/users", json={"name": "Bob"})).json()
    eve = (await other_account.post("/api/users", json={"name": "Eve"})).json()

    created = await account.post("/api/teams", json={"name": "Tier 2", "managerUserId": ada["id"],
                                                     "memberIds": [bob["id"], ada["id"], bob["id"]]})
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["managerUserId"] == ada["id"] and team["memberIds"] == sorted([ada["id"], bob["id"]])
    path = f"/api/teams/{team['id']}"
    assert (await account.get(path)).json()["memberIds"] == team["memberIds"]
    listed = (await account.get("/api/teams")).json()["data"]
    assert [t["memberIds"] for t in listed if t["id"] == team["id"]] == [team["memberIds"]]

    assert bad_fields(await account.post("/api/teams", json={"name": "x", "managerUserId": eve["id"]})) == ["managerUserId"]
    assert bad_fields(await account.post("/api/teams", json={"name": "x", "memberIds": [ada["id"], eve["id"]]})) == ["memberIds"]
    assert bad_fields(await account.patch(path, json={"memberIds": [eve["id"]]})) == ["memberIds"]
    assert bad_fields(await account.patch(path, json={"memberIds": [10**20]}))

    members_only = await account.patch(path, json={"memberIds": [bob["id"]]}, headers={"If-Match": "1"})
    assert members_only.status_code == 200, members_only.text
    assert members_only.json()["memberIds"] == [bob["id"]] and members_only.json()["version"] == 2
    same_members = await account.patch(path, json={"members": [bob["id"]]})
    assert same_members.status_code == 200 and same_members.json()["version"] == 2
    stale = await account.patch(path, json={"memberIds": []}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    assert (await account.get(path)).json()["memberIds"] == [bob["id"]]

    no_manager = (await account.patch(path, json={"managerUserId": None, "memberIds": []})).json()
    assert no_manager["managerUserId"] is None and no_manager["memberIds"] == [] and no_manager["version"] == 3


async def test_a_record_still_in_use_cannot_be_deleted(account: AccountContext) -> None:
    agent = (await account.post("/api/users", json={"name": "Busy agent"})).json()
    manager = (await account.post("/api/users", json={"name": "Manager"})).json()
    team = (await account.post("/api/teams", json={"name": "Busy team", "managerUserId": manager["id"],
                                                   "memberIds": [agent["id"]]})).json()
    ticket_type = (await account.post("/api/ticket-types", json={"name": "Incident"})).json()
    category = (await account.post("/api/ticket-categories", json={"name": "Network"})).json()
    ticket = await account.create_ticket(assignedToUserId=agent["id"], assignedToTeamId=team["id"],
                                         typeId=ticket_type["id"], categoryId=category["id"])

    for path in (f"/api/users/{agent['id']}", f"/api/teams/{team['id']}", f"/api/ticket-types/{ticket_type['id']}",
                 f"/api/ticket-categories/{category['id']}", f"/api/users/{manager['id']}"):
        response = await account.delete(path)
        assert response.status_code == 409, (path, response.text)
        body = response.json()
        assert body["error"] == "in_use" and "in use" in body["message"], body
        assert (await account.get(path)).status_code == 200, path

    # Once nothing points at them any more they go.
    moved = await account.patch(f"/api/tickets/{ticket['id']}", json={
        "assignedToUserId": None, "assignedToTeamId": None, "typeId": None, "categoryId": None})
    assert moved.status_code == 200, moved.text
    for path in (f"/api/ticket-types/{ticket_type['id']}", f"/api/ticket-categories/{category['id']}",
                 f"/api/teams/{team['id']}", f"/api/users/{agent['id']}", f"/api/users/{manager['id']}"):
        assert (await account.delete(path)).status_code == 204, path


@pytest.mark.parametrize("kind", KINDS)
async def test_another_accounts_records_are_404(account: AccountContext, other_account: AccountContext,
                                               kind: str) -> None:
    row = (await account.post(f"/api/{kind}", json=sample(kind, "Private"))).json()
    path = f"/api/{kind}/{row['id']}"
    assert (await other_account.get(path)).status_code == 404
    assert (await other_account.patch(path, json={"name": "Hijacked"})).status_code == 404
    assert (await other_account.patch(path, json={"name": "Hijacked"}, headers={"If-Match": "1"})).status_code == 404
    assert (await other_account.delete(path)).status_code == 404
    assert row["id"] not in [r["id"] for r in (await other_account.get(f"/api/{kind}")).json()["data"]]
    assert (await account.get(path)).json() == row


@pytest.mark.parametrize("kind", KINDS)
async def test_reference_lists_are_paginated(account: AccountContext, kind: str) -> None:
    before = (await account.get(f"/api/{kind}")).json()["pagination"]["total"]  # users: the admin
    ids = [(await account.post(f"/api/{kind}", json=sample(kind, f"Row {i}"))).json()["id"] for i in range(5)]
    total = before + 5
    pages = []
    for page in range(1, 4):
        body = (await account.get(f"/api/{kind}?pageSize=2&page={page}")).json()
        assert set(body) == {"data", "pagination"}
        assert body["pagination"] == {"page": page, "pageSize": 2, "total": total, "totalPages": (total + 1) // 2}
        pages += [r["id"] for r in body["data"]]
    everything = [r["id"] for r in (await account.get(f"/api/{kind}?pageSize=200")).json()["data"]]
    assert everything == sorted(everything) and everything[-5:] == ids
    assert pages == everything[:6]
    assert (await account.get(f"/api/{kind}?page=99")).json()["data"] == []
    for query, field in (("pageSize=0", "pageSize"), ("pageSize=201", "pageSize"), ("page=0", "page"),
                         ("page=x", "page"), ("page=99999999999", "page")):
        assert bad_fields(await account.get(f"/api/{kind}?{query}")) == [field], query


@pytest.mark.parametrize("kind", KINDS)
async def test_the_same_idempotency_key_creates_one_record(account: AccountContext, kind: str) -> None:
    before = (await account.get(f"/api/{kind}")).json()["pagination"]["total"]
    key = {"Idempotency-Key": f"create-{kind}"}
    first = await account.post(f"/api/{kind}", json=sample(kind, "Once"), headers=key)
    again = await account.post(f"/api/{kind}", json=sample(kind, "Once"), headers=key)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    concurrent = await asyncio.gather(*(account.post(f"/api/{kind}", json=sample(kind, "Racing"),
                                                     headers={"Idempotency-Key": f"race-{kind}"}) for _ in range(3)))
    assert [r.status_code for r in concurrent] == [201] * 3, [r.text for r in concurrent]
    assert len({r.json()["id"] for r in concurrent}) == 1
    other = await account.post(f"/api/{kind}", json=sample(kind, "Twice"), headers={"Idempotency-Key": "another"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert (await account.get(f"/api/{kind}")).json()["pagination"]["total"] == before + 3


async def test_a_failed_create_does_not_use_up_its_idempotency_key(account: AccountContext) -> None:
    await account.post("/api/ticket-types", json={"name": "Taken"})
    key = {"Idempotency-Key": "retry-after-fixing"}
    assert (await account.post("/api/ticket-types", json={"name": "Taken"}, headers=key)).status_code == 409
    fixed = await account.post("/api/ticket-types", json={"name": "Free"}, headers=key)
    assert fixed.status_code == 201 and fixed.json()["name"] == "Free"


async def test_an_overlong_idempotency_key_is_a_422(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    key = {"Idempotency-Key": "k" * 201}
    for path, body in (("/api/tickets", {"subject": "x"}), (f"/api/tickets/{ticket['id']}/comments", {"body": "x"}),
                       ("/api/users", {"name": "x"})):
        response = await account.post(path, json=body, headers=key)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["details"][0]["field"] == "Idempotency-Key"
