"""Rotations — ordered agents with weights that auto-assignment and escalation pick from by
weighted round-robin: CRUD, validation, permissions, tenant isolation, the preview of the next
pick, paused members, the pick's atomicity under concurrency, and ticket types pointing at them.

There is no public "pick" endpoint (auto-assignment and escalation pick inside their own write
transactions), so picks here go through ``RotationRepository.pick_next`` on real sessions."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import select

from pulse.db import SessionFactory
from pulse.models import RotationMember
from pulse.repositories.rotations import RotationRepository
from tests.conftest import AccountContext


def bad_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "validation_error"
    return [detail["field"] for detail in body["details"]]


async def make_users(account: AccountContext, *names: str) -> list[int]:
    ids = []
    for name in names:
        response = await account.post("/api/users", json={"name": name})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def make_rotation(account: AccountContext, members: list[dict[str, Any]], name: str = "Front line") -> dict:
    response = await account.post("/api/rotations", json={"name": name, "members": members})
    assert response.status_code == 201, response.text
    return response.json()


async def pick(sessions: SessionFactory, account_id: int, rotation_id: int) -> int | None:
    """One pick in its own committed transaction, as auto-assignment will do it."""
    async with sessions() as session, session.begin():
        return await RotationRepository(session).pick_next(account_id, rotation_id)


async def next_user(account: AccountContext, rotation_id: int) -> int | None:
    response = await account.get(f"/api/rotations/{rotation_id}/next")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"userId"}
    return response.json()["userId"]


async def currents(sessions: SessionFactory, rotation_id: int) -> dict[int, int]:
    async with sessions() as session:
        rows = await session.execute(select(RotationMember.user_id, RotationMember.current)
                                     .where(RotationMember.rotation_id == rotation_id))
        return {user_id: current for user_id, current in rows}


# --- CRUD ----------------------------------------------------------------------------------------


async def test_rotations_are_created_read_updated_and_deleted(account: AccountContext) -> None:
    ada, bob, cy = await make_users(account, "Ada", "Bob", "Cy")
    created = await account.post("/api/rotations", json={"name": "Tier 1", "members": [
        {"userId": bob, "weight": 3}, {"userId": ada, "weight": 1, "paused": True}, {"userId": cy}]})
    assert created.status_code == 201, created.text
    rotation = created.json()
    assert set(rotation) == {"id", "name", "members", "version", "createdAt", "updatedAt"}
    assert rotation["name"] == "Tier 1" and rotation["version"] == 1 and rotation["createdAt"] and rotation["updatedAt"]
    assert rotation["members"] == [{"userId": bob, "weight": 3, "paused": False},  # the order is kept
                                   {"userId": ada, "weight": 1, "paused": True},
                                   {"userId": cy, "weight": 1, "paused": False}]  # weight defaults to 1
    path = f"/api/rotations/{rotation['id']}"
    assert (await account.get(path)).json() == rotation
    assert (await account.get(path, token=account.tokens["read"])).json() == rotation
    listed = (await account.get("/api/rotations")).json()
    assert listed["data"] == [rotation]
    assert listed["pagination"] == {"page": 1, "pageSize": 50, "total": 1, "totalPages": 1}

    renamed = await account.patch(path, json={"name": "Tier 1 (EU)"}, headers={"If-Match": "1"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Tier 1 (EU)" and renamed.json()["version"] == 2
    assert renamed.json()["members"] == rotation["members"]
    stale = await account.patch(path, json={"name": "Stale"}, headers={"If-Match": "1"})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict", stale.text
    stale_in_body = await account.patch(path, json={"members": [], "version": 1})
    assert stale_in_body.status_code == 409, stale_in_body.text

    reordered = await account.patch(path, json={"members": [{"userId": cy, "weight": 2}, {"userId": bob, "weight": 3}],
                                                "version": 2})
    assert reordered.status_code == 200, reordered.text
    assert reordered.json()["members"] == [{"userId": cy, "weight": 2, "paused": False},
                                           {"userId": bob, "weight": 3, "paused": False}]
    assert reordered.json()["version"] == 3
    unchanged = await account.patch(path, json={"members": [{"userId": cy, "weight": 2}, {"userId": bob, "weight": 3}],
                                                "name": "Tier 1 (EU)"})
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 3
    emptied = (await account.patch(path, json={"members": []})).json()
    assert emptied["members"] == [] and emptied["version"] == 4

    assert (await account.delete(path)).status_code == 204
    assert (await account.get(path)).status_code == 404
    assert (await account.get(f"{path}/next")).status_code == 404
    assert (await account.patch(path, json={"name": "Ghost"})).status_code == 404
    assert (await account.delete(path)).status_code == 404
    assert (await account.get("/api/rotations")).json()["data"] == []


async def test_rotation_writes_are_validated(account: AccountContext, other_account: AccountContext) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    (eve,) = await make_users(other_account, "Eve")
    assert bad_fields(await account.post("/api/rotations", json={})) == ["name"]
    assert bad_fields(await account.post("/api/rotations", json={"name": ""})) == ["name"]
    assert bad_fields(await account.post("/api/rotations", json={"name": "x", "colour": "red"})) == ["colour"]
    assert bad_fields(await account.post("/api/rotations", json={"name": "x", "members": "ada"})) == ["members"]

    def members(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"name": "Checked", "members": list(entries)}

    # Someone who is not a user of this account — another account's user or no user at all.
    assert bad_fields(await account.post("/api/rotations", json=members(
        {"userId": ada}, {"userId": bob}, {"userId": eve}))) == ["members[2].userId"]
    assert bad_fields(await account.post("/api/rotations", json=members({"userId": 10**15}))) == ["members[0].userId"]
    assert bad_fields(await account.post("/api/rotations", json=members(
        {"userId": ada}, {"userId": bob}, {"userId": ada}))) == ["members[2].userId"]
    assert bad_fields(await account.post("/api/rotations", json=members({"userId": 0}))) == ["members[0].userId"]
    assert bad_fields(await account.post("/api/rotations", json=members({"weight": 2}))) == ["members[0].userId"]
    for weight in (0, 101, -1, "heavy", None):
        assert bad_fields(await account.post("/api/rotations", json=members(
            {"userId": ada}, {"userId": bob, "weight": weight}))) == ["members[1].weight"], weight
    assert bad_fields(await account.post("/api/rotations", json=members(
        {"userId": ada, "paused": "sometimes"}))) == ["members[0].paused"]
    assert bad_fields(await account.post("/api/rotations", json=members(
        {"userId": ada, "colour": "red"}))) == ["members[0].colour"]
    assert bad_fields(await account.post("/api/rotations", json=members(7))) == ["members[0]"]
    assert (await account.get("/api/rotations")).json()["data"] == []  # nothing was stored

    rotation = await make_rotation(account, [{"userId": ada, "weight": 100}, {"userId": bob, "weight": 1}])
    path = f"/api/rotations/{rotation['id']}"
    assert bad_fields(await account.patch(path, json={"name": None})) == ["name"]
    assert bad_fields(await account.patch(path, json={"members": None})) == ["members"]
    assert bad_fields(await account.patch(path, json={"members": [{"userId": eve}]})) == ["members[0].userId"]
    assert bad_fields(await account.patch(path, json={"members": [{"userId": ada, "weight": 0}]})) == ["members[0].weight"]
    assert bad_fields(await account.patch(path, json={"owner": 1})) == ["owner"]
    assert bad_fields(await account.patch(path, json={"name": "ok"}, headers={"If-Match": "v1"})) == ["If-Match"]
    assert (await account.get("/api/rotations/abc")).status_code == 422
    for missing in ("0", "99999999999999999999", "-4"):
        assert (await account.get(f"/api/rotations/{missing}")).status_code in (404, 422), missing
    assert (await account.get(path)).json() == rotation


async def test_rotation_names_are_unique_per_account(account: AccountContext, other_account: AccountContext) -> None:
    await make_rotation(account, [], name="Nights")
    duplicate = await account.post("/api/rotations", json={"name": "Nights"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "duplicate", duplicate.text
    other = await make_rotation(account, [], name="Days")
    assert (await account.patch(f"/api/rotations/{other['id']}", json={"name": "Nights"})).status_code == 409
    assert (await other_account.post("/api/rotations", json={"name": "Nights"})).status_code == 201


async def test_rotation_writes_need_manage_settings_and_reads_need_read_support(account: AccountContext) -> None:
    (ada,) = await make_users(account, "Ada")
    body = {"name": "Settings only", "members": [{"userId": ada}]}
    for token in ("read", "write"):
        refused = await account.post("/api/rotations", json=body, token=account.tokens[token])
        assert refused.status_code == 403, refused.text
    created = await account.post("/api/rotations", json=body, token=account.tokens["settings"])
    assert created.status_code == 201, created.text
    path = f"/api/rotations/{created.json()['id']}"
    for method in ("PATCH", "DELETE"):
        refused = await account.request(method, path, json={"name": "Mine"} if method == "PATCH" else None,
                                        token=account.tokens["write"])
        assert refused.status_code == 403, refused.text
    for read in (path, f"{path}/next", "/api/rotations"):
        assert (await account.get(read, token=account.tokens["read"])).status_code == 200, read
        assert (await account.get(read, token=account.tokens["settings"])).status_code == 403, read
    assert (await account.get(path)).json()["version"] == 1


async def test_another_accounts_rotation_is_404(account: AccountContext, other_account: AccountContext,
                                                sessions: SessionFactory) -> None:
    (ada,) = await make_users(account, "Ada")
    rotation = await make_rotation(account, [{"userId": ada}], name="Private rotation")
    path = f"/api/rotations/{rotation['id']}"
    for method, url, body in (("GET", path, None), ("GET", f"{path}/next", None), ("PATCH", path, {"name": "Mine"}),
                              ("DELETE", path, None)):
        response = await other_account.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert "Private rotation" not in response.text
    assert (await other_account.get("/api/rotations")).json()["data"] == []
    # Nor can the other account's automation pick from it.
    assert await pick(sessions, other_account.account_id, rotation["id"]) is None
    assert (await account.get(path)).json() == rotation
    assert await next_user(account, rotation["id"]) == ada


async def test_the_same_idempotency_key_creates_one_rotation(account: AccountContext) -> None:
    (ada,) = await make_users(account, "Ada")
    body = {"name": "Once", "members": [{"userId": ada, "weight": 2}]}
    key = {"Idempotency-Key": "rotation-once"}
    first = await account.post("/api/rotations", json=body, headers=key)
    again = await account.post("/api/rotations", json=body, headers=key)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert (await account.get("/api/rotations")).json()["pagination"]["total"] == 1


async def test_rotation_lists_are_paginated(account: AccountContext) -> None:
    ids = [(await make_rotation(account, [], name=f"Rotation {i}"))["id"] for i in range(5)]
    pages = []
    for page in (1, 2, 3):
        body = (await account.get(f"/api/rotations?pageSize=2&page={page}")).json()
        assert body["pagination"] == {"page": page, "pageSize": 2, "total": 5, "totalPages": 3}
        pages += [row["id"] for row in body["data"]]
    assert pages == ids
    assert bad_fields(await account.get("/api/rotations?pageSize=201")) == ["pageSize"]


async def test_a_deleted_user_leaves_the_rotation(account: AccountContext) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    rotation = await make_rotation(account, [{"userId": ada}, {"userId": bob}])
    assert (await account.delete(f"/api/users/{ada}")).status_code == 204
    after = (await account.get(f"/api/rotations/{rotation['id']}")).json()
    assert after["members"] == [{"userId": bob, "weight": 1, "paused": False}]
    assert await next_user(account, rotation["id"]) == bob


# --- picking -------------------------------------------------------------------------------------


async def test_previewing_the_next_member_does_not_advance_the_rotation(account: AccountContext,
                                                                        sessions: SessionFactory) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    rotation = await make_rotation(account, [{"userId": ada, "weight": 2}, {"userId": bob, "weight": 1}])
    state = await currents(sessions, rotation["id"])
    assert [await next_user(account, rotation["id"]) for _ in range(5)] == [ada] * 5
    assert await currents(sessions, rotation["id"]) == state
    # The preview is what the pick then returns; after it the preview moves on.
    expected = [ada, bob, ada, ada, bob, ada]
    for wanted in expected:
        assert await next_user(account, rotation["id"]) == wanted
        assert await pick(sessions, account.account_id, rotation["id"]) == wanted
    assert (await account.get(f"/api/rotations/{rotation['id']}")).json()["version"] == 1  # picks are not edits


async def test_a_pick_counts_only_when_its_transaction_commits(account: AccountContext,
                                                               sessions: SessionFactory) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    rotation = await make_rotation(account, [{"userId": ada}, {"userId": bob}])
    async with sessions() as session:
        await session.begin()
        assert await RotationRepository(session).pick_next(account.account_id, rotation["id"]) == ada
        await session.rollback()  # e.g. the ticket create it was part of failed
    assert await next_user(account, rotation["id"]) == ada
    assert await pick(sessions, account.account_id, rotation["id"]) == ada
    assert await pick(sessions, account.account_id, rotation["id"]) == bob


async def test_paused_members_are_skipped_and_keep_their_place(account: AccountContext,
                                                               sessions: SessionFactory) -> None:
    ada, bob, cy = await make_users(account, "Ada", "Bob", "Cy")
    rotation = await make_rotation(account, [{"userId": ada}, {"userId": bob}, {"userId": cy}])
    path = f"/api/rotations/{rotation['id']}"
    assert await pick(sessions, account.account_id, rotation["id"]) == ada

    paused = await account.patch(path, json={"members": [{"userId": ada}, {"userId": bob, "paused": True},
                                                         {"userId": cy}]})
    assert paused.status_code == 200 and paused.json()["version"] == 2, paused.text
    bob_state = (await currents(sessions, rotation["id"]))[bob]
    assert await next_user(account, rotation["id"]) == cy
    picks = [await pick(sessions, account.account_id, rotation["id"]) for _ in range(6)]
    assert set(picks) == {ada, cy} and abs(picks.count(ada) - picks.count(cy)) <= 2, picks
    assert (await currents(sessions, rotation["id"]))[bob] == bob_state  # untouched while paused

    resumed = await account.patch(path, json={"members": [{"userId": ada}, {"userId": bob}, {"userId": cy}]})
    assert resumed.status_code == 200 and resumed.json()["members"][1]["paused"] is False
    picks = Counter([await pick(sessions, account.account_id, rotation["id"]) for _ in range(30)])
    assert set(picks) == {ada, bob, cy} and all(9 <= count <= 11 for count in picks.values()), picks


async def test_the_next_member_is_null_when_nobody_can_be_picked(account: AccountContext,
                                                                 sessions: SessionFactory) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    empty = await make_rotation(account, [], name="Empty")
    assert await next_user(account, empty["id"]) is None
    assert await pick(sessions, account.account_id, empty["id"]) is None

    all_paused = await make_rotation(account, [{"userId": ada, "paused": True}, {"userId": bob, "paused": True}],
                                     name="On holiday")
    assert await next_user(account, all_paused["id"]) is None
    assert await pick(sessions, account.account_id, all_paused["id"]) is None
    assert set((await currents(sessions, all_paused["id"])).values()) == {0}
    assert await pick(sessions, account.account_id, 10**12) is None  # no such rotation


async def test_changing_members_or_weights_restarts_the_cycle(account: AccountContext,
                                                              sessions: SessionFactory) -> None:
    ada, bob = await make_users(account, "Ada", "Bob")
    rotation = await make_rotation(account, [{"userId": ada, "weight": 1}, {"userId": bob, "weight": 1}])
    assert await pick(sessions, account.account_id, rotation["id"]) == ada
    reweighted = await account.patch(f"/api/rotations/{rotation['id']}",
                                     json={"members": [{"userId": ada, "weight": 1}, {"userId": bob, "weight": 3}]})
    assert reweighted.status_code == 200, reweighted.text
    assert set((await currents(sessions, rotation["id"])).values()) == {0}
    picks = [await pick(sessions, account.account_id, rotation["id"]) for _ in range(8)]
    assert picks == [bob, ada, bob, bob] * 2


async def test_a_thousand_concurrent_picks_follow_the_weights(account: AccountContext,
                                                              sessions: SessionFactory) -> None:
    """1,000 picks in their own transactions, 25 at a time, over weights 3:2:1: the round-robin's
    position lives in PostgreSQL and each pick advances it atomically, so none is lost or doubled."""
    heavy, middle, light = await make_users(account, "Heavy", "Middle", "Light")
    rotation = await make_rotation(account, [{"userId": heavy, "weight": 3}, {"userId": middle, "weight": 2},
                                             {"userId": light, "weight": 1}])
    gate = asyncio.Semaphore(25)

    async def one_pick() -> int | None:
        async with gate:
            return await pick(sessions, account.account_id, rotation["id"])

    picked = await asyncio.gather(*(one_pick() for _ in range(1000)))
    counts = Counter(picked)
    print(f"1,000 concurrent picks over 3:2:1 → {counts[heavy]}/{counts[middle]}/{counts[light]}")
    assert None not in counts
    assert abs(counts[heavy] - 500) <= 1 and abs(counts[middle] - 333) <= 1 and abs(counts[light] - 167) <= 1, counts
    # 166 whole cycles and the first 4 picks of the next (heavy, middle, heavy, light): the state
    # is exactly where a serial run would be, so the next pick is the cycle's fifth, middle.
    assert await next_user(account, rotation["id"]) == middle


# --- ticket types pointing at a rotation ---------------------------------------------------------


async def test_a_ticket_type_auto_assigns_through_a_rotation_of_its_account(account: AccountContext,
                                                                           other_account: AccountContext) -> None:
    (ada,) = await make_users(account, "Ada")
    rotation = await make_rotation(account, [{"userId": ada}])
    theirs = await make_rotation(other_account, [], name="Theirs")

    plain = (await account.post("/api/ticket-types", json={"name": "Question"})).json()
    assert plain["autoAssignmentEnabled"] is False and plain["rotationId"] is None
    created = await account.post("/api/ticket-types", json={"name": "Incident", "autoAssignmentEnabled": True,
                                                            "rotationId": rotation["id"]})
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["autoAssignmentEnabled"] is True and incident["rotationId"] == rotation["id"]
    type_path = f"/api/ticket-types/{incident['id']}"
    assert (await account.get(type_path)).json() == incident

    assert bad_fields(await account.post("/api/ticket-types", json={"name": "Bug", "rotationId": theirs["id"]})) \
        == ["rotationId"]
    assert bad_fields(await account.post("/api/ticket-types", json={"name": "Bug", "rotationId": 10**15})) \
        == ["rotationId"]
    assert bad_fields(await account.post("/api/ticket-types", json={"name": "Bug", "rotationId": 0})) == ["rotationId"]
    assert bad_fields(await account.post("/api/ticket-types", json={"name": "Bug", "autoAssignmentEnabled": True})) \
        == ["rotationId"]
    assert bad_fields(await account.patch(type_path, json={"rotationId": None})) == ["rotationId"]
    assert bad_fields(await account.patch(type_path, json={"rotationId": theirs["id"]})) == ["rotationId"]
    assert bad_fields(await account.patch(type_path, json={"autoAssignmentEnabled": None})) == ["autoAssignmentEnabled"]
    assert bad_fields(await account.patch(f"/api/ticket-types/{plain['id']}",
                                          json={"autoAssignmentEnabled": True})) == ["rotationId"]
    assert (await account.get(type_path)).json() == incident

    # A rotation a ticket type points at cannot be deleted until the type lets go of it.
    in_use = await account.delete(f"/api/rotations/{rotation['id']}")
    assert in_use.status_code == 409 and in_use.json()["error"] == "in_use", in_use.text
    off = await account.patch(type_path, json={"autoAssignmentEnabled": False, "rotationId": None},
                              headers={"If-Match": "1"})
    assert off.status_code == 200, off.text
    assert (off.json()["autoAssignmentEnabled"], off.json()["rotationId"], off.json()["version"]) == (False, None, 2)
    assert (await account.delete(f"/api/rotations/{rotation['id']}")).status_code == 204


async def test_ticket_type_auto_assignment_needs_manage_settings(account: AccountContext) -> None:
    rotation = await make_rotation(account, [])
    body = {"name": "Routed", "autoAssignmentEnabled": True, "rotationId": rotation["id"]}
    assert (await account.post("/api/ticket-types", json=body, token=account.tokens["write"])).status_code == 403
    created = await account.post("/api/ticket-types", json=body, token=account.tokens["settings"])
    assert created.status_code == 201, created.text
    assert (created.json()["autoAssignmentEnabled"], created.json()["rotationId"]) == (True, rotation["id"])
    path = f"/api/ticket-types/{created.json()['id']}"
    refused = await account.patch(path, json={"autoAssignmentEnabled": False}, token=account.tokens["write"])
    assert refused.status_code == 403 and (await account.get(path)).json()["autoAssignmentEnabled"] is True
