"""Tickets as the Temporal UI shows them: number and subject (memo, encrypted like every payload),
assignee, SLA due instants and escalation level as search attributes, and the README's saved
queries finding the tickets they promise."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from temporalio.client import Client

from pulse import search_attributes as sa
from tests.conftest import AccountContext


async def found(client: Client, query: str, workflow_id: str, *, expected: bool = True) -> bool:
    """Whether ``query`` lists ``workflow_id``, waiting for visibility to catch up when expected."""
    for _ in range(50 if expected else 10):
        ids = [w.id async for w in client.list_workflows(query)]
        if (workflow_id in ids) == expected:
            return workflow_id in ids
        await asyncio.sleep(0.2)
    return workflow_id in ids


async def test_a_ticket_workflow_shows_its_number_subject_assignee_due_instants_and_escalation_level(
        account: AccountContext, temporal_client: Client) -> None:
    team = (await account.post("/api/teams", json={"name": "Logins"})).json()
    ticket = await account.create_ticket(subject="Cannot log in after reset", priority="urgent",
                                         assignedToTeamId=team["id"], assignedToUserId=account.admin_user_id)
    handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Cannot log in after a reset"})

    description = await handle.describe()
    assert await description.memo() == {"ticketNumber": ticket["ticketNumber"],
                                         "subject": "Cannot log in after a reset"}
    memo_payload = description.raw_description.workflow_execution_info.memo.fields["subject"]
    assert b"Cannot log in" not in memo_payload.data  # encrypted by the payload codec
    attributes = description.typed_search_attributes
    assert attributes.get(sa.TICKET_ASSIGNEE) == str(account.admin_user_id)
    assert attributes.get(sa.ESCALATION_LEVEL) == 0
    stored = await account.get(f"/api/tickets/{ticket['id']}")
    due = datetime.fromisoformat(stored.json()["slaFirstResponseDue"].replace("Z", "+00:00"))
    assert abs(attributes.get(sa.FIRST_RESPONSE_DUE) - due) < timedelta(seconds=1)
    assert attributes.get(sa.RESOLUTION_DUE) > attributes.get(sa.FIRST_RESPONSE_DUE)


async def test_the_readmes_saved_queries_find_breaching_and_team_tickets(
        account: AccountContext, temporal_client: Client) -> None:
    team = (await account.post("/api/teams", json={"name": "Billing desk"})).json()
    urgent = await account.create_ticket(priority="urgent", assignedToTeamId=team["id"])  # first response in 15 min
    low = await account.create_ticket(priority="low")  # first response in 8 h
    mine = f" AND WorkflowId STARTS_WITH 'ticket-{account.account_id}-'"
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    breaching = sa.SAVED_QUERIES["breaching soon"].format(soon=soon) + mine
    team_open = sa.SAVED_QUERIES["team's open tickets"].format(team_id=team["id"]) + mine
    urgent_id, low_id = (f"ticket-{account.account_id}-{t['id']}" for t in (urgent, low))

    assert await found(temporal_client, breaching, urgent_id)
    assert not await found(temporal_client, breaching, low_id, expected=False)
    assert await found(temporal_client, team_open, urgent_id)
    assert not await found(temporal_client, sa.SAVED_QUERIES["escalated"] + mine, urgent_id, expected=False)

    await account.patch(f"/api/tickets/{urgent['id']}", json={"status": "resolved"})
    assert not await found(temporal_client, team_open, urgent_id, expected=False)
    assert not await found(temporal_client, breaching, urgent_id, expected=False)
    resolved = (await temporal_client.get_workflow_handle(urgent_id).describe()).typed_search_attributes
    assert resolved.get(sa.RESOLUTION_DUE) is None and resolved.get(sa.TICKET_STATUS) == "resolved"


def test_every_search_attribute_is_registered_with_its_type_in_docker_compose() -> None:
    from pathlib import Path

    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    for key in sa.ALL:
        assert sa.registration(key) in compose, sa.registration(key)
