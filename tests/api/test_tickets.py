"""The ticket API of spec §2 against the real stack: lifecycle, versions, idempotency, input
aliases and validation, comments, timeline, and the list's filters, sorting and paging."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import AccountContext

# Spec §2.2, spelled out here so the test states the contract rather than importing the code's table.
ALLOWED = {
    "open": {"in_progress", "waiting_customer", "resolved", "closed"},
    "in_progress": {"open", "waiting_customer", "resolved", "closed"},
    "waiting_customer": {"in_progress", "resolved", "closed"},
    "resolved": {"in_progress", "closed"},
    "closed": set(),
}
STATUSES = list(ALLOWED)


async def ticket_in(account: AccountContext, status: str, **fields: Any) -> dict[str, Any]:
    """A new ticket brought to ``status`` the way a user would: created open, then moved."""
    ticket = await account.create_ticket(**fields)
    if status != "open":
        response = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": status})
        assert response.status_code == 200, response.text
        ticket = response.json()
    return ticket


TICKET_EVENTS = {"ticket_created", "field_changed", "status_changed", "comment_added", "ticket_deleted"}


async def timeline_of(account: AccountContext, ticket_id: int, *, only: set[str] | None = None) -> list[dict[str, Any]]:
    """The ticket's timeline, optionally only some event types (SLA, automation and sync add
    their own entries to the same timeline)."""
    response = await account.get(f"/api/tickets/{ticket_id}/timeline?pageSize=200")
    assert response.status_code == 200, response.text
    return [e for e in response.json()["data"] if only is None or e["eventType"] in only]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    return body


def bad_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [detail["field"] for detail in error_of(response)["details"]]


# -- lifecycle ------------------------------------------------------------------------------------


async def check_allowed_move(account: AccountContext, source: str, target: str) -> None:
    ticket = await ticket_in(account, source)
    response = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": target})
    label = f"{source} → {target}"
    assert response.status_code == 200, (label, response.text)
    moved = response.json()
    assert moved["status"] == target and moved["version"] == ticket["version"] + 1, label
    entries = await timeline_of(account, ticket["id"], only={"status_changed"})
    assert (entries[-1]["fromValue"], entries[-1]["toValue"]) == (source, target), label


async def check_refused_moves(account: AccountContext, source: str) -> None:
    """On one ticket in ``source``: the same status again is a no-op, every target the table does
    not allow is a 409 naming the allowed ones, and nothing about the ticket changes."""
    ticket = await ticket_in(account, source)
    path = f"/api/tickets/{ticket['id']}"
    before = await timeline_of(account, ticket["id"])
    same = await account.patch(path, json={"status": source})
    assert same.status_code == 200, (source, same.text)
    assert same.json()["status"] == source and same.json()["version"] == ticket["version"], source
    for target in STATUSES:
        if target == source or target in ALLOWED[source]:
            continue
        label = f"{source} → {target}"
        response = await account.patch(path, json={"status": target})
        assert response.status_code == 409, (label, response.text)
        error = error_of(response)
        assert error["error"] == "invalid_transition", (label, error)
        for allowed in ALLOWED[source]:
            assert allowed in error["message"], (label, error["message"])
    after = (await account.get(path)).json()
    assert after["status"] == source and after["version"] == ticket["version"], source
    assert await timeline_of(account, ticket["id"]) == before, f"refused moves from {source} logged something"


async def test_every_status_move_follows_the_lifecycle_table(account: AccountContext) -> None:
    await asyncio.gather(
        *(check_allowed_move(account, source, target) for source in STATUSES for target in ALLOWED[source]),
        *(check_refused_moves(account, source) for source in STATUSES),
    )


async def test_resolving_closing_and_reopening_stamp_the_ticket(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    assert ticket["resolvedAt"] is None and ticket["closedAt"] is None and ticket["reopenCount"] == 0

    resolved = (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})).json()
    assert resolved["resolvedAt"] is not None and resolved["closedAt"] is None

    reopened = (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})).json()
    assert reopened["reopenCount"] == 1 and reopened["resolvedAt"] is None

    again = (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})).json()
    assert again["resolvedAt"] is not None and again["resolvedAt"] >= resolved["resolvedAt"]
    assert (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress"})).json()["reopenCount"] == 2
    await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})

    closed = (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})).json()
    assert closed["closedAt"] is not None and closed["resolvedAt"] is not None and closed["reopenCount"] == 2
    # Moving from in_progress to open is not a reopen.
    other = await ticket_in(account, "in_progress")
    assert (await account.patch(f"/api/tickets/{other['id']}", json={"status": "open"})).json()["reopenCount"] == 0


async def test_a_closed_ticket_is_read_only(account: AccountContext) -> None:
    ticket = await ticket_in(account, "closed")
    path = f"/api/tickets/{ticket['id']}"

    edited = await account.patch(path, json={"subject": "Sneaky edit"})
    assert edited.status_code == 409 and error_of(edited)["error"] == "ticket_closed"
    tagged = await account.patch(path, json={"tags": ["x"], "version": ticket["version"]})
    assert tagged.status_code == 409
    reopened = await account.patch(path, json={"status": "open"})
    assert reopened.status_code == 409 and error_of(reopened)["error"] == "invalid_transition"
    # Closing again (a retried close) is the no-op that setting the current status always is.
    retried = await account.patch(path, json={"status": "closed"})
    assert retried.status_code == 200 and retried.json()["version"] == ticket["version"]

    after = (await account.get(path)).json()
    assert after["subject"] == ticket["subject"] and after["tags"] == [] and after["version"] == ticket["version"]


async def test_on_a_closed_ticket_only_settings_managers_comment_and_their_comments_stay_internal(
    account: AccountContext,
) -> None:
    ticket = await ticket_in(account, "closed")
    path = f"/api/tickets/{ticket['id']}/comments"

    refused = await account.post(path, token=account.tokens["write"], json={"body": "Any news?"})
    assert refused.status_code == 403, refused.text

    stored = await account.post(path, token=account.tokens["all"],
                                json={"body": "Archived: duplicate of PULSE-9", "isInternal": False,
                                      "notifyCustomer": True})
    assert stored.status_code == 201, stored.text
    assert stored.json()["isInternal"] is True and stored.json()["notifyCustomer"] is False

    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["status"] == "closed" and after["internalNoteCount"] == 1 and after["responseCount"] == 0
    assert after["firstRespondedAt"] is None
    public = (await account.get(f"{path}?includeInternal=false")).json()
    assert public["data"] == []


# -- optimistic concurrency -----------------------------------------------------------------------


async def test_a_stale_version_is_a_409_and_changes_nothing(account: AccountContext) -> None:
    ticket = await account.create_ticket(priority="low")
    path = f"/api/tickets/{ticket['id']}"
    assert ticket["version"] == 1

    current = await account.patch(path, json={"priority": "high"}, headers={"If-Match": "1"})
    assert current.status_code == 200 and current.json()["version"] == 2

    for kwargs in ({"json": {"priority": "urgent"}, "headers": {"If-Match": "1"}},
                   {"json": {"priority": "urgent"}, "headers": {"If-Match": 'W/"1"'}},
                   {"json": {"priority": "urgent", "version": 1}}):
        stale = await account.patch(path, **kwargs)
        assert stale.status_code == 409, stale.text
        error = error_of(stale)
        assert error["error"] == "version_conflict" and "2" in error["message"]

    weak = await account.patch(path, json={"priority": "medium"}, headers={"If-Match": '"2"'})
    assert weak.status_code == 200 and weak.json()["version"] == 3
    in_body = await account.patch(path, json={"priority": "low", "version": 3})
    assert in_body.status_code == 200 and in_body.json()["version"] == 4
    after = (await account.get(path)).json()
    assert after["priority"] == "low" and after["version"] == 4

    garbage = await account.patch(path, json={"priority": "high"}, headers={"If-Match": "yesterday"})
    assert garbage.status_code == 422
    stale_delete = await account.delete(path, headers={"If-Match": "1"})
    assert stale_delete.status_code == 409 and error_of(stale_delete)["error"] == "version_conflict"


async def test_a_change_that_changes_nothing_keeps_the_version(account: AccountContext) -> None:
    ticket = await account.create_ticket(priority="high", tags=["a"])
    response = await account.patch(f"/api/tickets/{ticket['id']}", json={"priority": "high", "tags": ["A"]})
    assert response.status_code == 200 and response.json()["version"] == ticket["version"]


# -- idempotency ----------------------------------------------------------------------------------


async def test_the_same_idempotency_key_creates_one_ticket(account: AccountContext) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = await account.post("/api/tickets", json={"subject": "Charged twice"}, headers=key)
    again = await account.post("/api/tickets", json={"subject": "Charged twice"}, headers=key)
    assert first.status_code == 201 and again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["ticketNumber"] == first.json()["ticketNumber"] == "PULSE-1"

    # No number was spent on the replay, and another key makes another ticket.
    other = await account.post("/api/tickets", json={"subject": "Charged twice"},
                               headers={"Idempotency-Key": f"order-{uuid.uuid4()}"})
    assert other.json()["ticketNumber"] == "PULSE-2"
    plain = await account.create_ticket(subject="No key")
    assert plain["ticketNumber"] == "PULSE-3"
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 3


async def test_concurrent_requests_with_one_idempotency_key_create_one_ticket(account: AccountContext) -> None:
    key = {"Idempotency-Key": "retry-storm"}
    responses = await asyncio.gather(*(account.post("/api/tickets", json={"subject": "Retry"}, headers=key)
                                       for _ in range(4)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 1


async def test_idempotency_keys_are_per_account(account: AccountContext, other_account: AccountContext) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = await account.post("/api/tickets", json={"subject": "Acme"}, headers=key)
    theirs = await other_account.post("/api/tickets", json={"subject": "Globex"}, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"] and theirs.json()["subject"] == "Globex"


async def test_the_same_idempotency_key_adds_one_comment(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}/comments"
    key = {"Idempotency-Key": "reply-1"}
    first = await account.post(path, json={"body": "On it"}, headers=key)
    again = await account.post(path, json={"body": "On it"}, headers=key)
    assert first.status_code == 201 and again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    other = await account.post(path, json={"body": "On it"}, headers={"Idempotency-Key": "reply-2"})
    assert other.json()["id"] != first.json()["id"]
    assert (await account.get(path)).json()["pagination"]["total"] == 2
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["responseCount"] == 2


# -- input aliases and validation -------------------------------------------------------------------


async def test_the_api_guides_input_aliases_are_accepted(account: AccountContext) -> None:
    user = (await account.post("/api/users", json={"name": "Grace"})).json()
    team = (await account.post("/api/teams", json={"name": "Billing desk"})).json()
    bug = (await account.post("/api/ticket-types", json={"name": "Bug"})).json()
    billing = (await account.post("/api/ticket-categories", json={"name": "Billing"})).json()
    access = (await account.post("/api/ticket-categories", json={"name": "Access"})).json()

    created = await account.post("/api/tickets", json={
        "subject": "Invoice missing", "assignedTo": user["id"], "assignedTeamId": team["id"],
        "ticketTypeId": bug["id"], "category": billing["id"],
    })
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert (ticket["assignedToUserId"], ticket["assignedToTeamId"]) == (user["id"], team["id"])
    assert (ticket["typeId"], ticket["categoryId"]) == (bug["id"], billing["id"])

    by_name = await account.patch(f"/api/tickets/{ticket['id']}", json={"category": "access"})
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["categoryId"] == access["id"]
    unknown = await account.patch(f"/api/tickets/{ticket['id']}", json={"category": "Nope"})
    assert bad_fields(unknown) == ["category"]
    both = await account.patch(f"/api/tickets/{ticket['id']}", json={"assignedTo": user["id"],
                                                                    "assignedToUserId": user["id"]})
    assert both.status_code == 422

    comment = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"content": "Looking into it"})
    assert comment.status_code == 201 and comment.json()["body"] == "Looking into it"


@pytest.mark.parametrize("path_suffix, body", [
    ("", {"subject": "ok", "severity": "high"}),
    ("/{id}", {"priority": "high", "assignee": 3}),
    ("/{id}/comments", {"body": "hi", "private": True}),
])
async def test_unknown_body_fields_are_a_422_naming_them(account: AccountContext, path_suffix: str,
                                                         body: dict[str, Any]) -> None:
    ticket = await account.create_ticket()
    path = "/api/tickets" + path_suffix.replace("{id}", str(ticket["id"]))
    method = "PATCH" if path_suffix == "/{id}" else "POST"
    response = await account.request(method, path, json=body)
    assert response.status_code == 422, response.text
    details = error_of(response)["details"]
    unknown = [k for k in body if k not in ("subject", "priority", "body")][0]
    assert {"field": unknown, "message": "unknown field"} in details, details
    assert all(set(d) >= {"field", "message"} for d in details)
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["version"] == ticket["version"] and after["priority"] == "medium"


async def test_unknown_query_parameters_on_writes_are_a_422(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}"
    for method, url, body in [("POST", "/api/tickets?notfiy=true", {"subject": "x"}),
                              ("PATCH", f"{path}?force=true", {"priority": "high"}),
                              ("POST", f"{path}/comments?internal=1", {"body": "x"}),
                              ("DELETE", f"{path}?hard=true", None),
                              ("POST", "/api/ticket-types?colour=red", {"name": "Bug"})]:
        response = await account.request(method, url, json=body)
        assert bad_fields(response) == [url.split("?")[1].split("=")[0]], (method, url)
    after = (await account.get(path)).json()
    assert after["version"] == ticket["version"] and after["responseCount"] == 0
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 1
    assert (await account.get("/api/ticket-types")).json()["data"] == []
    # Parameters a write does declare still work.
    assert (await account.post("/api/tickets?", json={"subject": "y"})).status_code == 201


async def test_ticket_fields_are_validated(account: AccountContext) -> None:
    for body, field in [({"subject": ""}, "subject"), ({"subject": "x" * 501}, "subject"), ({}, "subject"),
                        ({"subject": "ok", "priority": "critical"}, "priority"),
                        ({"subject": "ok", "status": "pending"}, "status"),
                        ({"subject": "ok", "tags": "billing"}, "tags"),
                        ({"subject": "ok", "customFields": ["a"]}, "customFields"),
                        ({"subject": "ok", "requesterEmail": "not-an-email"}, "requesterEmail"),
                        ({"subject": "ok", "assignedToUserId": "me"}, "assignedToUserId"),
                        ({"subject": "ok", "source": "fax"}, "source")]:
        response = await account.post("/api/tickets", json=body)
        assert field in bad_fields(response), (body, response.json())
        assert response.json()["error"] == "validation_error"
    assert (await account.post("/api/tickets", json={"subject": "x" * 500})).status_code == 201
    assert (await account.post("/api/tickets", content=b"{not json", headers={"Content-Type": "application/json"})).status_code == 422

    ticket = await account.create_ticket()
    for body, field in [({"subject": ""}, "subject"), ({"subject": None}, "subject"),
                        ({"priority": "p1"}, "priority"), ({"status": None}, "status")]:
        assert field in bad_fields(await account.patch(f"/api/tickets/{ticket['id']}", json=body)), body
    for body, field in [({"body": ""}, "body"), ({"body": "x", "authorType": "bot"}, "authorType"), ({}, "body")]:
        assert field in bad_fields(await account.post(f"/api/tickets/{ticket['id']}/comments", json=body)), body
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 2


async def test_text_with_a_nul_character_is_rejected_not_crashed_on(account: AccountContext) -> None:
    """PostgreSQL cannot store U+0000 in text or JSON; it is a 422 up front, never a failed write."""
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}"
    for method, url, body, field in [("POST", "/api/tickets", {"subject": "a\u0000b"}, "subject"),
                                     ("POST", "/api/tickets", {"subject": "ok", "tags": ["x\u0000"]}, "tags"),
                                     ("PATCH", path, {"customFields": {"k": "v\u0000"}}, "customFields"),
                                     ("PATCH", path, {"description": "\u0000"}, "description"),
                                     ("POST", f"{path}/comments", {"body": "hi\u0000"}, "body"),
                                     ("POST", "/api/users", {"name": "Ada\u0000"}, "name")]:
        response = await account.request(method, url, json=body)
        assert bad_fields(response) == [field], (method, url, body)
    assert (await account.get("/api/tickets?subject=a%00b")).status_code == 422
    after = (await account.get(path)).json()
    assert after["version"] == ticket["version"]
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 1


async def test_out_of_range_numbers_are_rejected_not_crashed_on(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    huge = 10**20
    assert bad_fields(await account.post("/api/tickets", json={"subject": "x", "assignedToUserId": huge}))
    assert bad_fields(await account.patch(f"/api/tickets/{ticket['id']}", json={"typeId": huge}))
    assert bad_fields(await account.post(f"/api/tickets/{ticket['id']}/comments",
                                         json={"body": "x", "mentions": [huge]}))
    assert (await account.get(f"/api/tickets/{huge}")).status_code == 404
    assert (await account.get(f"/api/tickets/PULSE-{huge}")).status_code == 404
    assert (await account.get("/api/tickets/PULSE-3000000000")).status_code == 404
    assert (await account.patch(f"/api/tickets/{huge}", json={"priority": "high"})).status_code == 404
    for query in (f"id={huge}", f"assignedToUserId={huge}", "reopenCount=3000000000", "page=3000000000"):
        response = await account.get(f"/api/tickets?{query}")
        assert response.status_code in (200, 422), (query, response.text)


async def test_references_to_another_accounts_records_are_a_422(
    account: AccountContext, other_account: AccountContext
) -> None:
    their_team = (await other_account.post("/api/teams", json={"name": "Globex team"})).json()
    their_type = (await other_account.post("/api/ticket-types", json={"name": "Globex type"})).json()
    their_category = (await other_account.post("/api/ticket-categories", json={"name": "Globex only"})).json()
    their_user = (await other_account.post("/api/users", json={"name": "Globex agent"})).json()

    created = await account.post("/api/tickets", json={"subject": "x", "assignedToTeamId": their_team["id"]})
    assert bad_fields(created) == ["assignedToTeamId"]
    created = await account.post("/api/tickets", json={"subject": "x", "typeId": their_type["id"],
                                                       "assignedTo": their_user["id"]})
    assert sorted(bad_fields(created)) == ["assignedToUserId", "typeId"]
    assert (await account.get("/api/tickets")).json()["pagination"]["total"] == 0

    ticket = await account.create_ticket()
    for body, field in [({"ticketTypeId": their_type["id"]}, "typeId"),
                        ({"categoryId": their_category["id"]}, "categoryId"),
                        ({"category": "Globex only"}, "category")]:
        response = await account.patch(f"/api/tickets/{ticket['id']}", json=body)
        assert bad_fields(response) == [field], body
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["version"] == 1 and after["typeId"] is None and after["categoryId"] is None
    # The failed create did not spend a ticket number.
    assert ticket["ticketNumber"] == "PULSE-1"


# -- reading and deleting --------------------------------------------------------------------------


async def test_a_ticket_is_found_by_id_and_by_ticket_number(account: AccountContext) -> None:
    await account.create_ticket(subject="first")
    ticket = await account.create_ticket(subject="second")
    assert ticket["ticketNumber"] == "PULSE-2"
    for reference in (str(ticket["id"]), "PULSE-2", "pulse-2"):
        response = await account.get(f"/api/tickets/{reference}")
        assert response.status_code == 200 and response.json()["subject"] == "second", reference
    by_number = await account.patch("/api/tickets/PULSE-2", json={"priority": "high"})
    assert by_number.status_code == 200 and by_number.json()["id"] == ticket["id"]
    for missing in ("PULSE-99", "99999999", "abc", "PULSE-", "0"):
        response = await account.get(f"/api/tickets/{missing}")
        assert response.status_code == 404 and error_of(response)["error"] == "not_found", missing


async def test_a_created_ticket_carries_the_whole_ticket_object(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Printer on fire", description="Smoke", tags=["Hardware", "hardware", " urgent "],
                                         requesterEmail="pat@example.com", customFields={"floor": 3})
    expected = {"id", "ticketNumber", "subject", "description", "status", "priority", "version",
                "assignedToUserId", "assignedToTeamId", "typeId", "categoryId", "tags", "requesterName",
                "requesterEmail", "requesterPhone", "source", "slaPolicyId", "slaStatus", "slaFirstResponseDue",
                "slaFirstResponseMet", "slaResolutionDue", "slaResolutionMet", "slaBreachedAt", "slaPausedAt",
                "slaTotalPausedTime", "firstResponseTime", "resolutionTime", "responseCount", "internalNoteCount",
                "attachmentCount", "reopenCount", "escalationCount", "escalationLevel", "createdAt", "updatedAt",
                "firstRespondedAt", "resolvedAt", "closedAt", "lastCustomerResponseAt", "createdBy", "customFields",
                "externalSource", "externalTicketId", "mergedIntoTicketId"}
    assert expected <= set(ticket), expected - set(ticket)
    assert ticket["status"] == "open" and ticket["priority"] == "medium" and ticket["version"] == 1
    assert ticket["tags"] == ["hardware", "urgent"] and ticket["customFields"] == {"floor": 3}
    assert ticket["createdBy"] == account.admin_user_id and ticket["createdAt"].endswith(("Z", "+00:00"))
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json() == ticket


async def test_a_deleted_ticket_is_returned_once_then_gone(account: AccountContext) -> None:
    keep = await account.create_ticket(subject="keep")
    ticket = await account.create_ticket(subject="remove me")
    path = f"/api/tickets/{ticket['id']}"
    deleted = await account.delete(path)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == ticket["id"] and deleted.json()["subject"] == "remove me"

    assert (await account.get(path)).status_code == 404
    assert (await account.get("/api/tickets/PULSE-2")).status_code == 404
    listed = (await account.get("/api/tickets")).json()
    assert [t["id"] for t in listed["tickets"]] == [keep["id"]] and listed["pagination"]["total"] == 1
    assert (await account.delete(path)).status_code == 404
    assert (await account.patch(path, json={"priority": "high"})).status_code == 404
    assert (await account.post(f"{path}/comments", json={"body": "hello?"})).status_code == 404
    assert (await account.get(f"{path}/comments")).status_code == 404
    # Numbers are never reused.
    assert (await account.create_ticket())["ticketNumber"] == "PULSE-3"


async def test_a_closed_ticket_can_still_be_deleted(account: AccountContext) -> None:
    ticket = await ticket_in(account, "closed")
    assert (await account.delete(f"/api/tickets/{ticket['id']}")).status_code == 200
    assert (await account.get(f"/api/tickets/{ticket['id']}")).status_code == 404


# -- comments -------------------------------------------------------------------------------------


async def test_public_agent_comments_count_as_responses_and_set_first_response_once(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}/comments"
    first = await account.post(path, json={"body": "Hi, looking", "isInternal": False})
    assert first.status_code == 201, first.text
    comment = first.json()
    assert comment["isInternal"] is False and comment["authorType"] == "agent"
    assert comment["authorUserId"] == account.admin_user_id and comment["ticketId"] == ticket["id"]
    after_first = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after_first["responseCount"] == 1 and after_first["firstRespondedAt"] is not None

    await account.post(path, json={"body": "Found it"})
    after_second = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after_second["responseCount"] == 2
    assert after_second["firstRespondedAt"] == after_first["firstRespondedAt"]
    assert after_second["internalNoteCount"] == 0 and after_second["status"] == "open"


async def test_mentions_name_users_of_the_account(account: AccountContext, other_account: AccountContext) -> None:
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}/comments"
    colleague = (await account.post("/api/users", json={"name": "Colleague"})).json()
    outsider = (await other_account.post("/api/users", json={"name": "Outsider"})).json()
    mentioned = await account.post(path, json={"body": "@Colleague please check", "mentions": [colleague["id"]]})
    assert mentioned.status_code == 201 and mentioned.json()["mentions"] == [colleague["id"]]
    refused = await account.post(path, json={"body": "@Outsider", "mentions": [colleague["id"], outsider["id"]]})
    assert bad_fields(refused) == ["mentions"]
    assert (await account.get(path)).json()["pagination"]["total"] == 1


async def test_an_internal_note_is_not_a_response(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    note = await account.post(f"/api/tickets/{ticket['id']}/comments",
                              json={"body": "Customer is a VIP", "isInternal": True, "notifyCustomer": True})
    assert note.status_code == 201 and note.json()["isInternal"] is True
    assert note.json()["notifyCustomer"] is False
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["internalNoteCount"] == 1 and after["responseCount"] == 0 and after["firstRespondedAt"] is None


async def test_a_customer_reply_moves_waiting_tickets_back_to_work_and_reopens_resolved_ones(
    account: AccountContext,
) -> None:
    waiting, resolved, fresh = await asyncio.gather(ticket_in(account, "waiting_customer"),
                                                    ticket_in(account, "resolved"), ticket_in(account, "open"))
    reply = {"body": "Still broken", "authorType": "customer"}

    await account.post(f"/api/tickets/{waiting['id']}/comments", json=reply)
    after = (await account.get(f"/api/tickets/{waiting['id']}")).json()
    assert after["status"] == "in_progress" and after["reopenCount"] == 0
    assert after["lastCustomerResponseAt"] is not None
    assert after["responseCount"] == 0 and after["firstRespondedAt"] is None

    await account.post(f"/api/tickets/{resolved['id']}/comments", json=reply)
    after = (await account.get(f"/api/tickets/{resolved['id']}")).json()
    assert after["status"] == "in_progress" and after["reopenCount"] == 1 and after["resolvedAt"] is None

    await account.post(f"/api/tickets/{fresh['id']}/comments", json=reply)
    assert (await account.get(f"/api/tickets/{fresh['id']}")).json()["status"] == "open"
    # An internal note, even one typed as the customer's, moves nothing.
    waiting2 = await ticket_in(account, "waiting_customer")
    await account.post(f"/api/tickets/{waiting2['id']}/comments", json={**reply, "isInternal": True})
    assert (await account.get(f"/api/tickets/{waiting2['id']}")).json()["status"] == "waiting_customer"


async def test_comments_are_listed_oldest_first_and_notes_are_hidden_from_whoever_may_not_see_them(
    account: AccountContext,
) -> None:
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}/comments"
    for body, internal in [("one", False), ("note", True), ("two", False), ("three", False)]:
        assert (await account.post(path, json={"body": body, "isInternal": internal})).status_code == 201

    everything = (await account.get(path)).json()
    assert [c["body"] for c in everything["data"]] == ["one", "note", "two", "three"]
    assert everything["pagination"] == {"page": 1, "pageSize": 50, "total": 4, "totalPages": 1}
    public = (await account.get(f"{path}?includeInternal=false")).json()
    assert [c["body"] for c in public["data"]] == ["one", "two", "three"] and public["pagination"]["total"] == 3

    for query in ("", "?includeInternal=true"):
        as_reader = (await account.get(path + query, token=account.tokens["read"])).json()
        assert [c["body"] for c in as_reader["data"]] == ["one", "two", "three"], query

    second_page = (await account.get(f"{path}?pageSize=2&page=2")).json()
    assert [c["body"] for c in second_page["data"]] == ["two", "three"]
    assert second_page["pagination"] == {"page": 2, "pageSize": 2, "total": 4, "totalPages": 2}
    assert (await account.get(f"{path}?includeInternal=maybe")).status_code == 422


async def test_the_timeline_tells_what_happened_and_who_did_it(account: AccountContext) -> None:
    team = (await account.post("/api/teams", json={"name": "Tier 2"})).json()
    ticket = await account.create_ticket()
    path = f"/api/tickets/{ticket['id']}"
    await account.patch(path, json={"priority": "high", "assignedToTeamId": team["id"]})
    await account.patch(path, json={"status": "in_progress"})
    await account.post(f"{path}/comments", json={"body": "Working on it"})

    entries = await timeline_of(account, ticket["id"], only=TICKET_EVENTS)
    assert [e["eventType"] for e in entries] == [
        "ticket_created", "field_changed", "field_changed", "status_changed", "comment_added"]
    assert all(e["actor"] == "user" and e["actorUserId"] == account.admin_user_id for e in entries)
    changes = {e["field"]: (e["fromValue"], e["toValue"]) for e in entries if e["eventType"] == "field_changed"}
    assert changes == {"priority": ("medium", "high"), "assignedToTeamId": (None, team["id"])}
    assert (entries[3]["field"], entries[3]["fromValue"], entries[3]["toValue"]) == ("status", "open", "in_progress")
    assert entries[4]["data"]["isInternal"] is False
    stamps = [e["createdAt"] for e in entries]
    assert stamps == sorted(stamps)
    # Readers see the timeline too; other accounts do not.
    assert (await account.get(f"{path}/timeline", token=account.tokens["read"])).status_code == 200


# -- the list -------------------------------------------------------------------------------------


async def make_queue(account: AccountContext) -> dict[str, dict[str, Any]]:
    team = (await account.post("/api/teams", json={"name": "Queue"})).json()
    tickets = {}
    tickets["t1"] = await ticket_in(account, "open", subject="t1", priority="high", tags=["billing", "vip"],
                                    customFields={"plan": "gold", "seats": 3}, assignedToTeamId=team["id"])
    tickets["t2"] = await ticket_in(account, subject="t2", status="in_progress", priority="urgent", tags=["billing"],
                                    assignedToUserId=account.admin_user_id)
    tickets["t3"] = await ticket_in(account, subject="t3", status="waiting_customer", priority="low", customFields={"plan": "silver"})
    tickets["t4"] = await ticket_in(account, subject="t4", status="resolved", priority="medium", tags=["VIP"])
    tickets["t5"] = await ticket_in(account, subject="t5", status="closed", priority="urgent")
    return tickets


async def listed(account: AccountContext, query: str) -> list[str]:
    response = await account.get(f"/api/tickets?{query}")
    assert response.status_code == 200, (query, response.text)
    return [t["subject"] for t in response.json()["tickets"]]


async def test_list_filters(account: AccountContext) -> None:
    queue = await make_queue(account)
    await account.post("/api/tickets", json={"subject": "placeholder"})  # t6: open, medium, unassigned
    subjects = lambda query: listed(account, query)  # noqa: E731

    assert set(await subjects("status=open")) == {"t1", "placeholder"}
    assert set(await subjects("status=open,in_progress")) == {"t1", "t2", "placeholder"}
    assert set(await subjects("priority=urgent,high")) == {"t1", "t2", "t5"}
    assert set(await subjects("status=closed&priority=urgent")) == {"t5"}
    assert set(await subjects("tags=billing,vip")) == {"t1"}
    assert set(await subjects("tags=VIP")) == {"t1", "t4"}
    assert set(await subjects("tags=billing")) == {"t1", "t2"}
    assert set(await subjects("unassigned=true")) == {"t3", "t4", "t5", "placeholder"}
    assert set(await subjects("unassigned=false")) == {"t1", "t2"}
    assert set(await subjects(f"assignedToUserId={account.admin_user_id}")) == {"t2"}
    assert set(await subjects(f"assignedTeamId={queue['t1']['assignedToTeamId']}")) == {"t1"}
    assert set(await subjects("customFields.plan=gold")) == {"t1"}
    assert set(await subjects("customFields.seats=3")) == {"t1"}
    assert set(await subjects("customFields.plan=bronze")) == set()

    t3_created = queue["t3"]["createdAt"].replace("+00:00", "Z")
    after = await subjects(f"createdAfter={t3_created}")
    assert set(after) == {"t3", "t4", "t5", "placeholder"}
    assert set(await subjects(f"createdBefore={t3_created}")) == {"t1", "t2"}
    assert set(await subjects(f"createdAfter={t3_created}&status=resolved")) == {"t4"}


async def test_list_sorting(account: AccountContext) -> None:
    queue = await make_queue(account)
    ids = {t["id"]: name for name, t in queue.items()}

    async def order(query: str) -> list[str]:
        response = await account.get(f"/api/tickets?{query}")
        assert response.status_code == 200, (query, response.text)
        return [ids[t["id"]] for t in response.json()["tickets"]]

    assert await order("") == ["t5", "t4", "t3", "t2", "t1"]  # newest first
    assert await order("sortBy=createdAt&sortOrder=asc") == ["t1", "t2", "t3", "t4", "t5"]
    by_severity = ["t5", "t2", "t1", "t4", "t3"]  # urgent (newest first), high, medium, low
    assert await order("sortBy=priority") == by_severity
    assert await order("sort=priority") == by_severity
    assert await order("sort=-priority") == by_severity
    assert await order("sortBy=priority&sortOrder=desc") == by_severity
    assert await order("sort=priority,-createdAt") == by_severity
    assert await order("sortBy=priority&sortOrder=asc") == ["t3", "t4", "t1", "t2", "t5"]
    assert await order("sort=-priority,%2BcreatedAt") == ["t2", "t5", "t1", "t4", "t3"]


async def test_unknown_filters_and_sort_fields_are_a_422_listing_the_valid_ones(account: AccountContext) -> None:
    unknown_filter = await account.get("/api/tickets?colour=red")
    assert bad_fields(unknown_filter) == ["colour"]
    message = error_of(unknown_filter)["details"][0]["message"]
    for valid in ("status", "priority", "tags", "unassigned", "createdAfter", "customFields.<key>"):
        assert valid in message, message

    for query, field in [("sortBy=colour", "sortBy"), ("sort=priority,-colour", "sort")]:
        response = await account.get(f"/api/tickets?{query}")
        assert bad_fields(response) == [field], query
        assert "createdAt" in error_of(response)["details"][0]["message"] and "priority" in response.text

    for query, field in [("sortOrder=sideways", "sortOrder"), ("status=pending", "status"),
                         ("priority=p1", "priority"), ("createdAfter=yesterday", "createdAfter"),
                         ("createdAfter=2026-01-01T00:00:00", "createdAfter"), ("unassigned=maybe", "unassigned"),
                         ("assignedToUserId=me", "assignedToUserId"), ("page=0", "page"), ("pageSize=201", "pageSize"),
                         ("pageSize=ten", "pageSize")]:
        assert bad_fields(await account.get(f"/api/tickets?{query}")) == [field], query


async def test_list_pagination_reports_totals(account: AccountContext) -> None:
    created = [await account.create_ticket(subject=f"n{i}") for i in range(5)]
    newest_first = [t["id"] for t in reversed(created)]
    pages = []
    for page in (1, 2, 3):
        body = (await account.get(f"/api/tickets?pageSize=2&page={page}")).json()
        assert body["pagination"] == {"page": page, "pageSize": 2, "total": 5, "totalPages": 3}
        pages += [t["id"] for t in body["tickets"]]
    assert pages == newest_first
    beyond = (await account.get("/api/tickets?pageSize=2&page=4")).json()
    assert beyond["tickets"] == [] and beyond["pagination"]["total"] == 5
    filtered = (await account.get("/api/tickets?pageSize=1&subject=n1,n2")).json()
    assert filtered["pagination"] == {"page": 1, "pageSize": 1, "total": 2, "totalPages": 2}
    default = (await account.get("/api/tickets")).json()
    assert default["pagination"] == {"page": 1, "pageSize": 50, "total": 5, "totalPages": 1}
