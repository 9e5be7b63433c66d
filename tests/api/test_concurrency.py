"""Concurrent writes: the ticket's workflow serialises them, so none is lost and every one
counts exactly once; ticket numbers stay gap-free and unique under concurrent creates."""

from __future__ import annotations

import asyncio

from tests.conftest import AccountContext


async def test_fifty_parallel_patches_to_one_ticket_all_apply_exactly_once(account: AccountContext) -> None:
    ticket = await account.create_ticket(customFields={"origin": "phone"})
    path = f"/api/tickets/{ticket['id']}"

    responses = await asyncio.gather(
        *(account.patch(path, json={"customFields": {f"field{i}": i}}) for i in range(50))
    )

    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses if r.status_code != 200]
    # Each write answered with the ticket as it committed it: 50 distinct consecutive versions.
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 52))
    final = (await account.get(path)).json()
    assert final["version"] == 1 + 50
    assert final["customFields"] == {"origin": "phone", **{f"field{i}": i for i in range(50)}}
    timeline = (await account.get(f"{path}/timeline?pageSize=200")).json()["data"]
    assert sum(1 for e in timeline if e["eventType"] == "field_changed" and e["field"] == "customFields") == 50


async def test_custom_fields_patch_merges_and_null_removes_a_key(account: AccountContext) -> None:
    ticket = await account.create_ticket(customFields={"plan": "gold", "seats": 3})
    path = f"/api/tickets/{ticket['id']}"
    merged = (await account.patch(path, json={"customFields": {"seats": 5, "region": "eu"}})).json()
    assert merged["customFields"] == {"plan": "gold", "seats": 5, "region": "eu"}
    removed = (await account.patch(path, json={"customFields": {"plan": None}})).json()
    assert removed["customFields"] == {"seats": 5, "region": "eu"}
    same = (await account.patch(path, json={"customFields": {"seats": 5}})).json()
    assert same["version"] == removed["version"]  # nothing changed, nothing counted
    cleared = (await account.patch(path, json={"customFields": None})).json()
    assert cleared["customFields"] == {}


async def test_thirty_concurrent_creates_get_ticket_numbers_1_to_30(account: AccountContext) -> None:
    responses = await asyncio.gather(
        *(account.post("/api/tickets", json={"subject": f"Outage report {i}"}) for i in range(30))
    )
    assert [r.status_code for r in responses] == [201] * 30, [r.text for r in responses if r.status_code != 201]
    numbers = sorted(int(r.json()["ticketNumber"].removeprefix("PULSE-")) for r in responses)
    assert numbers == list(range(1, 31))
    assert len({r.json()["id"] for r in responses}) == 30
    listed = (await account.get("/api/tickets?pageSize=200")).json()
    assert listed["pagination"]["total"] == 30
    assert sorted(t["ticketNumber"] for t in listed["tickets"]) == sorted(f"PULSE-{n}" for n in range(1, 31))


async def test_ticket_numbers_are_per_account_under_interleaved_creates(
    account: AccountContext, other_account: AccountContext
) -> None:
    responses = await asyncio.gather(
        *(ctx.post("/api/tickets", json={"subject": "Interleaved"}) for _ in range(8) for ctx in (account, other_account))
    )
    assert all(r.status_code == 201 for r in responses)
    for ctx in (account, other_account):
        listed = (await ctx.get("/api/tickets")).json()["tickets"]
        assert sorted(int(t["ticketNumber"].removeprefix("PULSE-")) for t in listed) == list(range(1, 9))
