"""Ticket list filters on every field, multi-key stable sorts, and the 422 that lists valid names."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from pulse.db import SessionFactory
from pulse.models import Ticket
from tests.conftest import AccountContext


async def listed(account: AccountContext, **params: Any) -> list[int]:
    response = await account.get("/api/tickets", params=params)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["tickets"]]


async def test_scalar_filters_take_any_of_lists(account: AccountContext) -> None:
    urgent = await account.create_ticket(priority="urgent", source="email")
    high = await account.create_ticket(priority="high", source="web")
    low = await account.create_ticket(priority="low", source="email")

    assert set(await listed(account, priority="urgent,high")) == {urgent["id"], high["id"]}
    assert set(await listed(account, source="email")) == {urgent["id"], low["id"]}
    assert await listed(account, priority="urgent,high", source="email") == [urgent["id"]]
    assert await listed(account, ticketNumber=high["ticketNumber"]) == [high["id"]]
    assert await listed(account, id=f"{low['id']}") == [low["id"]]


async def test_tags_all_any_and_unassigned(account: AccountContext) -> None:
    team = (await account.post("/api/teams", json={"name": "Billing"})).json()
    both = await account.create_ticket(tags=["Billing", "vip"], assignedToTeamId=team["id"])
    one = await account.create_ticket(tags=["billing"])
    none = await account.create_ticket()

    assert await listed(account, tags="billing,VIP") == [both["id"]]
    assert set(await listed(account, tagsAny="vip,billing")) == {both["id"], one["id"]}
    assert set(await listed(account, unassigned="true")) == {one["id"], none["id"]}
    assert await listed(account, unassigned="false") == [both["id"]]
    assert await listed(account, assignedToTeamId=str(team["id"])) == [both["id"]]


async def test_date_ranges_are_inclusive_after_and_exclusive_before(account: AccountContext) -> None:
    first = await account.create_ticket(subject="first")
    await asyncio.sleep(0.01)
    second = await account.create_ticket(subject="second")
    third = await account.create_ticket(subject="third")

    assert set(await listed(account, createdAfter=second["createdAt"])) == {second["id"], third["id"]}
    assert await listed(account, createdBefore=second["createdAt"]) == [first["id"]]
    assert await listed(account, createdAfter=second["createdAt"], createdBefore=third["createdAt"]) == [second["id"]]
    patched = (await account.patch(f"/api/tickets/{first['id']}", json={"priority": "high"})).json()
    assert await listed(account, updatedAfter=patched["updatedAt"]) == [first["id"]]
    bad = await account.get("/api/tickets", params={"createdAfter": "yesterday", "updatedBefore": "2026-01-01T00:00:00"})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["details"]} == {"createdAfter", "updatedBefore"}


async def test_custom_fields_match_strings_numbers_and_booleans(account: AccountContext) -> None:
    pro = await account.create_ticket(customFields={"plan": "pro", "seats": 5, "trial": False})
    free = await account.create_ticket(customFields={"plan": "free", "seats": "5"})
    await account.create_ticket(customFields={"plan": "enterprise", "seats": 50})

    assert await listed(account, **{"customFields.plan": "pro"}) == [pro["id"]]
    assert set(await listed(account, **{"customFields.seats": "5"})) == {pro["id"], free["id"]}
    assert set(await listed(account, **{"customFields.plan": "pro,free"})) == {pro["id"], free["id"]}
    assert await listed(account, **{"customFields.trial": "false"}) == [pro["id"]]
    assert await listed(account, **{"customFields.plan": "pro", "customFields.seats": "50"}) == []
    assert await listed(account, **{"customFields.nothing": "x"}) == []


async def test_external_source_and_id_sla_status_and_merged_filters(account: AccountContext, sessions: SessionFactory) -> None:
    synced = await account.create_ticket(externalSource="maverick", externalTicketId="MAV-77")
    other = await account.create_ticket(externalSource="maverick", externalTicketId="MAV-78")
    local = await account.create_ticket()
    async with sessions() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == other["id"]).values(sla_status="breached"))
        await session.execute(update(Ticket).where(Ticket.id == local["id"]).values(sla_status="at_risk"))

    assert set(await listed(account, externalSource="maverick")) == {synced["id"], other["id"]}
    assert await listed(account, externalSource="maverick", externalTicketId="MAV-77") == [synced["id"]]
    assert await listed(account, slaStatus="breached") == [other["id"]]
    assert set(await listed(account, slaStatus="breached,at_risk")) == {other["id"], local["id"]}
    bad = await account.get("/api/tickets", params={"slaStatus": "late"})
    assert bad.status_code == 422 and "on_time" in bad.json()["details"][0]["message"]


async def test_multi_key_sort_is_stable_and_pages_never_repeat(account: AccountContext) -> None:
    created = [await account.create_ticket(subject=subject, priority=priority)
               for subject, priority in [("b", "high"), ("a", "high"), ("c", "low"), ("a", "low"), ("b", "high")]]
    ids = [t["id"] for t in created]

    assert await listed(account, sort="priority,+subject") == [ids[1], ids[0], ids[4], ids[3], ids[2]]
    assert await listed(account, sort="-subject,+priority") == [ids[2], ids[0], ids[4], ids[3], ids[1]]
    assert await listed(account, sortBy="subject", sortOrder="asc") == [ids[1], ids[3], ids[0], ids[4], ids[2]]
    # Same keys for every ticket: id decides, in the last key's direction, so pages never overlap.
    pages = [await listed(account, sort="+priority,+status", pageSize=2, page=n) for n in (1, 2, 3)]
    assert [i for page in pages for i in page] == [ids[2], ids[3], ids[0], ids[1], ids[4]]


async def test_nullable_sort_keys_put_nulls_last_both_ways(account: AccountContext) -> None:
    user = (await account.post("/api/users", json={"name": "Ana"})).json()
    other = (await account.post("/api/users", json={"name": "Bo"})).json()
    a = await account.create_ticket(assignedToUserId=user["id"])
    none = await account.create_ticket()
    b = await account.create_ticket(assignedToUserId=other["id"])

    assert await listed(account, sort="+assignedToUserId") == [a["id"], b["id"], none["id"]]
    assert await listed(account, sort="-assignedToUserId") == [b["id"], a["id"], none["id"]]


async def test_unknown_filters_and_sorts_are_422_listing_valid_names(account: AccountContext) -> None:
    response = await account.get("/api/tickets", params={"colour": "red", "sort": "mood"})
    assert response.status_code == 422
    details = {d["field"]: d["message"] for d in response.json()["details"]}
    assert set(details) == {"colour", "sort"}
    assert "customFields.<key>" in details["colour"] and "slaStatus" in details["colour"]
    assert "createdAt" in details["sort"] and "priority" in details["sort"]


async def test_filter_values_are_parameters_never_sql(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="x' OR '1'='1", customFields={"a'b": "c\"d"})
    assert await listed(account, subject="x' OR '1'='1") == [ticket["id"]]
    assert await listed(account, subject="' OR 1=1 --") == []
    assert await listed(account, **{"customFields.a'b": 'c"d'}) == [ticket["id"]]
    assert await listed(account, requesterEmail="'; DROP TABLE tickets; --") == []
    assert (await account.get("/api/tickets", params={"id": "1 OR 1=1"})).status_code == 422
    assert await listed(account) == [ticket["id"]]


async def test_a_listed_ticket_reads_exactly_as_the_ticket_itself(account: AccountContext,
                                                                  sessions: SessionFactory) -> None:
    """The list renders each row's values straight to JSON (no record in between): every field,
    its order and its JSON form (timestamps, enums, nulls, custom fields) as ``GET /api/tickets/{id}``."""
    team = (await account.post("/api/teams", json={"name": "Rendering"})).json()
    full = await account.create_ticket(subject="Ünïcode <b>&", description="line\nbreak", priority="urgent",
                                       tags=["vip", "billing"], assignedToTeamId=team["id"],
                                       requesterEmail="a@example.com", externalSource="maverick",
                                       externalTicketId="MAV-9", customFields={"plan": "pro", "seats": 12,
                                                                               "beta": True, "nested": {"a": [1]}})
    bare = await account.create_ticket()
    async with sessions() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == full["id"]).values(sla_status="breached"))
    for params in ({}, {"sort": "priority"}, {"search": "line"}):
        listed_body = await account.get("/api/tickets", params=params)
        assert listed_body.status_code == 200, listed_body.text
        for item in listed_body.json()["tickets"]:
            item.pop("searchSnippet", None)
            single = (await account.get(f"/api/tickets/{item['id']}")).json()
            assert list(item) == list(single) and item == single
    listed_ids = {t["id"] for t in (await account.get("/api/tickets")).json()["tickets"]}
    assert {full["id"], bare["id"]} <= listed_ids


async def test_a_list_past_the_exact_count_says_its_total_is_an_estimate(account: AccountContext,
                                                                        monkeypatch: Any) -> None:
    """Within COUNT_CAP a list's matches are read once for its page and its exact total; past it the
    page is still right and the total is flagged as an estimate, however the planner guessed."""
    from pulse.repositories import ticket_lists

    created = [await account.create_ticket(tags=["capped"], priority=priority)
               for priority in ("low", "urgent", "medium", "high", "urgent")]
    rank = ["low", "medium", "high", "urgent"]
    by_priority = [t["id"] for t in sorted(created, key=lambda t: (rank.index(t["priority"]), t["id"]), reverse=True)]
    exact = (await account.get("/api/tickets", params={"tags": "capped", "sort": "priority", "pageSize": 2})).json()
    assert exact["pagination"]["total"] == 5 and not exact["pagination"].get("totalIsEstimate")
    monkeypatch.setattr(ticket_lists, "COUNT_CAP", 3)
    pages = []
    for page in (1, 2, 3):
        body = (await account.get("/api/tickets", params={"tags": "capped", "sort": "priority", "pageSize": 2,
                                                           "page": page})).json()
        pages += [t["id"] for t in body["tickets"]]
        if page == 1:
            assert body["pagination"]["totalIsEstimate"] is True and body["pagination"]["total"] >= 4
    assert [t["id"] for t in exact["tickets"]] == by_priority[:2] and pages == by_priority
