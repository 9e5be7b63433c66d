"""Escalation rules through the API: validation naming the exact part, isolation, statistics,
a ticket's history, and rules created later applying to open tickets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client

from pulse.workflows.ticket import TicketWorkflow
from tests.conftest import AccountContext

RULES = "/api/tickets/escalation-rules"


def rule(**overrides: Any) -> dict[str, Any]:
    return {"name": "Level 1", "priority": "urgent", "level": 1, "when": {"afterMinutes": 30},
            "escalateTo": "manager", "notificationChannels": ["in_app"], **overrides}


async def test_an_invalid_rule_is_refused_naming_the_part_at_fault(account: AccountContext,
                                                                   other_account: AccountContext) -> None:
    foreign_user = other_account.admin_user_id
    cases = [
        (rule(when={"afterMinutes": 5, "slaPercent": 80}), "when"),
        (rule(when={"slaPercent": 80}), "when"),
        (rule(conditions=[{"field": "priority", "operator": "resembles", "value": "x"}]), "conditions[0].operator"),
        (rule(conditions=[{"field": "colour", "operator": "equals", "value": "x"}]), "conditions[0]"),
        (rule(escalateTo="specific_user"), "escalateToUserId"),
        (rule(escalateTo="specific_user", escalateToUserId=foreign_user), "escalateToUserId"),
        (rule(notificationChannels=["pigeon"]), "notificationChannels[0]"),
        (rule(addInternalNote=True, internalNoteTemplate="{{ticketNumber}} by {{wizard}}"), "internalNoteTemplate"),
    ]
    for body, field in cases:
        response = await account.post(RULES, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["details"][0]["field"].startswith(field), (body, response.json())
    assert (await account.post(RULES, json=rule(), token=account.tokens["write"])).status_code == 403


async def test_rules_are_listed_read_and_replaced_within_their_account(account: AccountContext,
                                                                       other_account: AccountContext) -> None:
    top_level_alias = {key: value for key, value in rule(escalateAfterMinutes=45).items() if key != "when"}
    created = await account.post(RULES, json=top_level_alias)
    assert created.status_code == 201, created.text
    in_when = await account.post(RULES, json=rule(when={"escalateAfterMinutes": 45}, priority="low"))
    assert in_when.status_code == 201 and in_when.json()["when"] == {"afterMinutes": 45}
    body = created.json()
    assert body["when"] == {"afterMinutes": 45} and body["version"] == 1
    assert (await other_account.get(f"{RULES}/{body['id']}")).status_code == 404
    listed = (await account.get(f"{RULES}?priority=urgent&enabled=true")).json()
    assert [r["id"] for r in listed["data"]] == [body["id"]]
    replaced = await account.request("PUT", f"{RULES}/{body['id']}", json=rule(level=2, enabled=False),
                                     headers={"If-Match": "1"})
    assert replaced.status_code == 200 and replaced.json()["level"] == 2 and replaced.json()["version"] == 2
    stale = await account.request("PUT", f"{RULES}/{body['id']}", json=rule(), headers={"If-Match": "1"})
    assert stale.status_code == 409
    fetched = (await account.get(f"{RULES}/{body['id']}")).json()
    assert fetched["statistics"] == {"totalEscalations": 0, "lastEscalatedAt": None, "averageEscalationTime": 0.0}
    assert (await account.delete(f"{RULES}/{body['id']}")).status_code == 204
    assert (await account.get(f"{RULES}/{body['id']}")).status_code == 404


async def test_a_rule_created_later_escalates_open_tickets_already_past_its_threshold(
    account: AccountContext, temporal_client: Client
) -> None:
    ticket = await account.create_ticket(priority="urgent", subject="Old and forgotten")
    other_priority = await account.create_ticket(priority="low")
    created = await account.post(RULES, json=rule(when={"afterMinutes": 0}, escalateTo="specific_user",
                                                  escalateToUserId=account.admin_user_id, reassign=True,
                                                  addInternalNote=True))
    assert created.status_code == 201, created.text

    deadline = time.monotonic() + 20
    history: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        history = (await account.get(f"/api/tickets/{ticket['id']}/escalations")).json()["data"]
        if history:
            break
        await asyncio.sleep(0.2)
    assert [(h["ruleId"], h["level"], h["targetUserIds"], h["reassigned"]) for h in history] == [
        (created.json()["id"], 1, [account.admin_user_id], True)]
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["escalationCount"] == 1 and after["escalationLevel"] == 1
    assert after["assignedToUserId"] == account.admin_user_id and after["internalNoteCount"] == 1
    timeline = (await account.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    escalated = [e for e in timeline if e["eventType"] == "escalated"]
    assert len(escalated) == 1 and escalated[0]["actor"] == f"escalation:{created.json()['id']}"
    assert (await account.get(f"/api/tickets/{other_priority['id']}/escalations")).json()["data"] == []
    stats = (await account.get(f"{RULES}/{created.json()['id']}")).json()["statistics"]
    assert stats["totalEscalations"] == 1 and stats["lastEscalatedAt"] is not None

    # Editing the rule reaches the ticket again, but it has escalated once in this cycle: no second time.
    handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    before = (await handle.query(TicketWorkflow.current_state)).agenda_refreshes
    await account.request("PUT", f"{RULES}/{created.json()['id']}",
                          json=rule(when={"afterMinutes": 0}, escalateTo="specific_user",
                                    escalateToUserId=account.admin_user_id, name="Renamed"))
    while (await handle.query(TicketWorkflow.current_state)).agenda_refreshes == before:
        assert time.monotonic() < deadline + 20
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    assert len((await account.get(f"/api/tickets/{ticket['id']}/escalations")).json()["data"]) == 1


async def test_an_escalation_and_a_reply_to_the_customer_reach_a_real_smtp_receiver_through_the_outbox(
    account: AccountContext,
) -> None:
    """End to end through the ticket workflow: the escalation's ``notify:email`` and ``notify:in_app``
    deliveries, and ``notifyCustomer`` on a public reply, each recorded as sent."""
    from tests.api.test_notifications import configure, email_settings, smtp_server

    director = (await account.post("/api/users", json={"name": "Dee", "email": "dee@example.com"})).json()["id"]
    async with smtp_server() as (inbox, port):
        await configure(account, email=email_settings(port))
        ticket = await account.create_ticket(priority="urgent", subject="Card terminal offline",
                                             requesterEmail="merchant@example.com")
        created = await account.post(RULES, json=rule(when={"afterMinutes": 0}, escalateTo="specific_user",
                                                      escalateToUserId=director,
                                                      notificationChannels=["email", "in_app"]))
        assert created.status_code == 201, created.text
        reply = await account.post(f"/api/tickets/{ticket['id']}/comments",
                                   json={"body": "We are on it.", "notifyCustomer": True})
        assert reply.status_code == 201

        deadline = time.monotonic() + 30
        while len(inbox.messages) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        to_director, to_merchant = inbox.to("dee@example.com"), inbox.to("merchant@example.com")
        assert len(to_director) == 1 and ticket["ticketNumber"] in to_director[0]["Subject"]
        assert len(to_merchant) == 1 and "We are on it." in to_merchant[0].get_content()
        assert to_merchant[0]["From"] == "support@pulse.example"

    # A delivery is marked sent after the receiver took the message: wait for the rows to say so.
    expected = [("email", "sent", "comment"), ("email", "sent", "escalation"), ("in_app", "sent", "escalation")]
    deadline = time.monotonic() + 30
    while True:
        sent = (await account.get(f"/api/notifications/deliveries?ticketId={ticket['id']}")).json()["data"]
        found = sorted((d["channel"], d["status"], d["reason"].split(":")[0]) for d in sent)
        if found == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert found == expected


async def escalations_of(account: AccountContext, ticket_id: int, count: int, seconds: float = 20) -> list[dict]:
    """The ticket's escalation history once it has ``count`` rows (or whatever it has at the deadline)."""
    deadline = time.monotonic() + seconds
    history: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        history = (await account.get(f"/api/tickets/{ticket_id}/escalations")).json()["data"]
        if len(history) >= count:
            break
        await asyncio.sleep(0.2)
    return history


async def test_targets_resolve_to_the_team_manager_the_team_a_user_or_the_rotations_next_member(
    account: AccountContext
) -> None:
    ids = []
    for name in ("Manager Mo", "Member Ann", "Member Bob", "On call Cy"):
        created = await account.post("/api/users", json={"name": name})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    manager, ann, bob, cy = ids
    team = await account.post("/api/teams", json={"name": "Payments", "managerUserId": manager,
                                                   "memberIds": [ann, bob]})
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    rotation = await account.post("/api/rotations", json={"name": "On call", "members": [{"userId": cy}]})
    assert rotation.status_code == 201, rotation.text

    levels = [
        rule(name="to the manager", level=1, when={"afterMinutes": 0}, escalateTo="manager"),
        rule(name="to the team", level=2, when={"afterMinutes": 0}, escalateTo="team", escalateToTeamId=team_id),
        rule(name="to a user", level=3, when={"afterMinutes": 0}, escalateTo="specific_user",
             escalateToUserId=bob),
        rule(name="to the rotation", level=4, when={"afterMinutes": 0}, escalateTo="rotation",
             escalateToRotationId=rotation.json()["id"]),
    ]
    rule_ids = []
    for body in levels:
        created = await account.post(RULES, json=body)
        assert created.status_code == 201, created.text
        rule_ids.append(created.json()["id"])

    ticket = await account.create_ticket(priority="urgent", assignedToTeamId=team_id)
    history = await escalations_of(account, ticket["id"], 4)
    by_rule = {row["ruleId"]: (row["escalateTo"], row["targetUserIds"], row["targetTeamId"]) for row in history}
    assert by_rule == {
        rule_ids[0]: ("manager", [manager], None),
        rule_ids[1]: ("team", [ann, bob], team_id),
        rule_ids[2]: ("specific_user", [bob], None),
        rule_ids[3]: ("rotation", [cy], None),
    }
    shown = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert shown["escalationCount"] == 4 and shown["escalationLevel"] == 4

    # Without an assigned team, "manager" means the account's admins.
    unassigned = await account.create_ticket(priority="urgent")
    manager_rows = [row for row in await escalations_of(account, unassigned["id"], 4) if row["ruleId"] == rule_ids[0]]
    assert [row["targetUserIds"] for row in manager_rows] == [[account.admin_user_id]]


async def test_conditions_are_checked_when_the_threshold_is_reached_and_disabled_rules_never_fire(
    account: AccountContext
) -> None:
    vip_only = await account.post(RULES, json=rule(
        name="VIP", when={"afterMinutes": 0}, escalateTo="specific_user", escalateToUserId=account.admin_user_id,
        conditions=[{"field": "tags", "operator": "contains", "value": "vip"}]))
    off = await account.post(RULES, json=rule(name="Off", enabled=False, level=2, when={"afterMinutes": 0},
                                              escalateTo="specific_user", escalateToUserId=account.admin_user_id))
    assert vip_only.status_code == 201 and off.status_code == 201, (vip_only.text, off.text)

    vip = await account.create_ticket(priority="urgent", tags=["vip"])
    plain = await account.create_ticket(priority="urgent", tags=["retail"])
    assert [row["ruleId"] for row in await escalations_of(account, vip["id"], 1)] == [vip_only.json()["id"]]
    await asyncio.sleep(1)  # the plain ticket's threshold passed too: its condition did not hold
    assert (await account.get(f"/api/tickets/{plain['id']}/escalations")).json()["data"] == []
    assert [row["ruleId"] for row in (await account.get(f"/api/tickets/{vip['id']}/escalations")).json()["data"]] \
        == [vip_only.json()["id"]]
    assert (await account.get(f"{RULES}/{off.json()['id']}")).json()["statistics"]["totalEscalations"] == 0
