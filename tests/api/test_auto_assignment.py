"""A new ticket of a type with auto-assignment is assigned on create from the type's rotation,
in the create's own transaction, and the assignee is told in-app."""

from __future__ import annotations

import asyncio
import time

import psycopg

from tests.conftest import AccountContext


async def test_new_tickets_of_an_auto_assigned_type_take_turns_through_its_rotation(
    account: AccountContext, database_url: str
) -> None:
    ada = (await account.post("/api/users", json={"name": "Ada"})).json()["id"]
    bob = (await account.post("/api/users", json={"name": "Bob"})).json()["id"]
    rotation = (await account.post("/api/rotations", json={"name": "Tier 1", "members": [
        {"userId": ada, "weight": 1}, {"userId": bob, "weight": 1}]})).json()
    kind = await account.post("/api/ticket-types", json={"name": "Access request", "autoAssignmentEnabled": True,
                                                          "rotationId": rotation["id"]})
    assert kind.status_code == 201, kind.text

    first = await account.create_ticket(typeId=kind.json()["id"])
    second = await account.create_ticket(typeId=kind.json()["id"])
    chosen = await account.create_ticket(typeId=kind.json()["id"], assignedToUserId=ada)
    untyped = await account.create_ticket()
    assert {first["assignedToUserId"], second["assignedToUserId"]} == {ada, bob}
    assert chosen["assignedToUserId"] == ada  # the creator's choice stands (and the rotation did not move)
    assert untyped["assignedToUserId"] is None
    third = await account.create_ticket(typeId=kind.json()["id"])
    assert third["assignedToUserId"] == first["assignedToUserId"]

    deadline = time.monotonic() + 15
    while True:
        with psycopg.connect(database_url, autocommit=True) as db:
            found = db.execute("SELECT user_id, ticket_id FROM notifications WHERE kind = 'assignment' "
                               "AND account_id = %s ORDER BY ticket_id", (account.account_id,)).fetchall()
        if len(found) >= 4 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assigned = [first, second, chosen, third]  # each assignee was told, the creator's choice too
    assert sorted(found) == sorted((ticket["assignedToUserId"], ticket["id"]) for ticket in assigned)
