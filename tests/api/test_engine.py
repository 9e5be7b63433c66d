"""The ticket engine as a user sees it: outbox consumers, one writer per ticket (closed tickets
and lost workflows get a run that loads them), the agenda's rules fan-out, bad input refused
before anything is written."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import psycopg
from temporalio.client import Client

from pulse.db import SessionFactory
from pulse.domain.commands import TicketWorkflowInput
from pulse.services.rules import RulesService
from pulse.workflows.ticket import TicketWorkflow
from tests.conftest import TEST_TASK_QUEUE, AccountContext


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(query, params).fetchall()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_a_mention_becomes_one_in_app_notification_for_the_mentioned_user(
    account: AccountContext, database_url: str
) -> None:
    ticket = await account.create_ticket(subject="Refund stuck")
    colleague = (await account.post("/api/users", json={"name": "Dana", "email": "dana@example.com"})).json()
    comment = await account.post(f"/api/tickets/{ticket['id']}/comments",
                                 json={"body": "@Dana can you look?", "mentions": [colleague["id"]]})
    assert comment.status_code == 201, comment.text

    async def notified() -> list[tuple[Any, ...]]:
        return rows(database_url, "SELECT user_id, kind, title FROM notifications WHERE ticket_id = %s", ticket["id"])

    found = await eventually(notified)
    assert found == [(colleague["id"], "mention", f"You were mentioned on {ticket['ticketNumber']}")]
    delivered = rows(database_url, "SELECT d.consumer FROM outbox_deliveries d JOIN ticket_events e ON e.id = d.event_id "
                                   "WHERE e.ticket_id = %s", ticket["id"])
    assert delivered == [("in_app_mentions",)]


async def test_every_timeline_entry_has_its_outbox_event(account: AccountContext, database_url: str) -> None:
    ticket = await account.create_ticket(priority="high")
    await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "in_progress", "tags": ["vip"]})
    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "On it"})
    timeline = rows(database_url, "SELECT event_type FROM ticket_timeline WHERE ticket_id = %s ORDER BY id", ticket["id"])
    outbox = rows(database_url, "SELECT event_type FROM ticket_events WHERE ticket_id = %s ORDER BY id", ticket["id"])
    assert timeline == outbox
    assert [t for (t,) in timeline][:2] == ["ticket_created", "sla_started"]
    assert {"status_changed", "field_changed", "comment_added", "sla_metric_completed"} <= {t for (t,) in timeline}


async def test_a_note_on_a_closed_ticket_is_written_by_a_short_run_of_its_workflow(
    account: AccountContext, temporal_client: Client
) -> None:
    ticket = await account.create_ticket()
    handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    first_run = (await handle.describe()).run_id
    closed = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})
    assert closed.status_code == 200
    await handle.result()  # the close ended the run

    note = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Refund confirmed by bank"},
                              token=account.tokens["all"])
    assert note.status_code == 201, note.text
    assert note.json()["isInternal"] is True
    latest = await handle.describe()
    assert latest.run_id != first_run and latest.status.name == "COMPLETED"  # a short run took the note
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["status"] == "closed" and after["internalNoteCount"] == 1 and after["version"] == 3

    refused = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Reopen?"})
    assert refused.status_code == 409 and refused.json()["error"] == "ticket_closed"
    again = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})
    assert again.status_code == 200 and again.json()["version"] == 3  # closing again changes nothing
    deleted = await account.delete(f"/api/tickets/{ticket['id']}")
    assert deleted.status_code == 200
    assert (await account.get(f"/api/tickets/{ticket['id']}")).status_code == 404


async def test_an_open_ticket_whose_workflow_was_lost_takes_writes_again(
    account: AccountContext, temporal_client: Client
) -> None:
    ticket = await account.create_ticket(priority="urgent")
    handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    await handle.terminate("simulated loss of the workflow")

    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Still here"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    state = await temporal_client.get_workflow_handle(handle.id).query(TicketWorkflow.current_state)
    assert state.loaded and state.version == 2 and state.number == int(ticket["ticketNumber"].split("-")[1])
    assert any(item.kind == "sla" for item in state.agenda)  # the SLA timers are armed again
    comment = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Back"})
    assert comment.status_code == 201


async def test_a_huge_custom_field_is_refused_before_anything_is_written(
    account: AccountContext, database_url: str
) -> None:
    before = rows(database_url, "SELECT count(*) FROM tickets WHERE account_id = %s", account.account_id)
    response = await account.post("/api/tickets", json={"subject": "Big", "customFields": {"blob": "x" * 500_000}})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "customFields"
    over_the_body_limit = await account.post("/api/tickets", json={"subject": "Bigger",
                                                                   "customFields": {"blob": "x" * 3_000_000}})
    assert over_the_body_limit.status_code == 413
    assert rows(database_url, "SELECT count(*) FROM tickets WHERE account_id = %s", account.account_id) == before
    ticket = await account.create_ticket()
    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"customFields": {"blob": "x" * 100_000}})
    assert patched.status_code == 422


async def test_a_create_key_freed_by_a_refused_create_can_be_used_again(account: AccountContext) -> None:
    headers = {"Idempotency-Key": "retry-after-fix"}
    refused = await account.post("/api/tickets", json={"subject": "Typo", "typeId": 999999}, headers=headers)
    assert refused.status_code == 422
    created = await account.post("/api/tickets", json={"subject": "Fixed"}, headers=headers)
    assert created.status_code == 201 and "Idempotent-Replayed" not in created.headers
    replayed = await account.post("/api/tickets", json={"subject": "Fixed"}, headers=headers)
    assert replayed.status_code == 201 and replayed.json()["id"] == created.json()["id"]


async def test_a_rules_change_reaches_every_open_ticket_once(
    account: AccountContext, sessions: SessionFactory, temporal_client: Client, database_url: str
) -> None:
    open_tickets = [await account.create_ticket(subject=f"Open {i}") for i in range(4)]
    closed = await account.create_ticket(subject="Done")
    await account.patch(f"/api/tickets/{closed['id']}", json={"status": "closed"})
    rules = RulesService(sessions, temporal_client, TEST_TASK_QUEUE)

    generation, fanout = await rules.add_agenda_probe(account.account_id, after_minutes=0)
    await temporal_client.get_workflow_handle(fanout).result()
    handles = [temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{t['id']}") for t in open_tickets]

    async def fired_everywhere() -> bool:
        found = rows(database_url, "SELECT ticket_id FROM ticket_timeline WHERE account_id = %s "
                                   "AND event_type = 'agenda_probe_fired'", account.account_id)
        return len(found) >= len(open_tickets)

    assert await eventually(fired_everywhere)
    generation_two, fanout_two = await rules.add_agenda_probe(account.account_id, after_minutes=10_000)
    await temporal_client.get_workflow_handle(fanout_two).result()

    async def recomputed() -> bool:
        states = [await handle.query(TicketWorkflow.current_state) for handle in handles]
        return all(state.rules_generation == generation_two for state in states)

    assert await eventually(recomputed)
    for handle in handles:
        state = await handle.query(TicketWorkflow.current_state)
        assert state.agenda_refreshes == 2  # once per generation, never twice
        assert len([item for item in state.agenda if item.kind == "probe"]) == 2
    fired = rows(database_url, "SELECT ticket_id, count(*) FROM ticket_timeline WHERE account_id = %s "
                               "AND event_type = 'agenda_probe_fired' GROUP BY ticket_id", account.account_id)
    assert sorted(fired) == sorted((t["id"], 1) for t in open_tickets)  # the due probe fired once per ticket


async def test_a_ticket_whose_run_never_recorded_its_create_takes_writes(
    account: AccountContext, temporal_client: Client
) -> None:
    """The row committed but the run lost its create (a Temporal restart before the update was
    recorded): the run loads the ticket at its first command instead of answering 404 for good."""
    ticket = await account.create_ticket(subject="Half-created")
    handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
    await handle.terminate("the run is lost")
    await temporal_client.start_workflow(
        "TicketWorkflow", TicketWorkflowInput(account_id=account.account_id, ticket_id=ticket["id"]),
        id=handle.id, task_queue=TEST_TASK_QUEUE)  # a fresh run that never gets its create

    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"priority": "high"})
    assert patched.status_code == 200, patched.text
    comment = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Works"})
    assert comment.status_code == 201
    assert (await account.delete(f"/api/tickets/{ticket['id']}")).status_code == 200


async def test_a_repeated_comment_does_not_undo_what_happened_since(
    account: AccountContext, temporal_client: Client
) -> None:
    """The replay of a comment's Idempotency-Key answers the stored comment; the ticket keeps its
    newer state (here a manual SLA pause): an old outcome is an answer, not news."""
    ticket = await account.create_ticket(priority="urgent")
    first = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Once"},
                               headers={"Idempotency-Key": "comment-once"})
    paused = await account.post(f"/api/tickets/{ticket['id']}/sla/pause", json={"reason": "vendor"})
    assert paused.status_code == 200 and paused.json()["slaStatus"] == "paused"

    again = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Once"},
                               headers={"Idempotency-Key": "comment-once"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    state = await temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}").query(
        TicketWorkflow.current_state)
    assert state.sla_paused_manually and state.sla_status == "paused"
    assert not [item for item in state.agenda if item.kind == "sla"]  # no timer while paused
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["slaStatus"] == "paused"
