"""Time-triggered automation on the time-skipping server with the real engine: the brief's
Workflow 2 auto-close (7 days after resolved, not when the customer replied in between) and
Workflow 3's last step (on sla_breached the priority goes up and an executive gets an email at a
real SMTP receiver)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from pulse.db import SessionFactory
from pulse.domain.changes import TicketChanges
from pulse.domain.commands import Actor, AddCommentInput, UpdateTicketInput
from pulse.domain.tickets import AuthorType, TicketStatus
from pulse.gateway import TicketGateway
from pulse.models import Ticket, User
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin
from pulse.services.automation import AutomationRuleService
from pulse.services.notifications import NotificationSettingsService
from tests.api.test_notifications import smtp_server
from tests.workflows.conftest import create_ticket


async def _account(sessions: SessionFactory, name: str) -> tuple[int, int]:
    async with sessions() as session, session.begin():
        account_id, admin_id, _ = await create_account_with_admin(session, name)
    return account_id, admin_id


async def _row(sessions: SessionFactory, account_id: int, ticket_id: int) -> Ticket:
    async with sessions() as session:
        row = await TicketRepository(session).get(account_id, ticket_id)
        assert row is not None
        return row


async def _until(check: Any, timeout: float = 15) -> Any:
    """The workflow task after a skip runs in real time: wait for its write."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def _terminate(*handles: WorkflowHandle) -> None:
    for handle in handles:
        try:
            await handle.terminate("test over")
        except Exception:  # noqa: BLE001 - already ended (a closed ticket's run ends by itself)
            pass


async def test_a_resolved_ticket_closes_after_7_days_not_after_a_customer_reply_and_the_rule_re_arms(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    env, queue = time_skipping_env, time_skipping_worker.task_queue
    account_id, admin_id = await _account(sessions, "Auto-close")
    actor = Actor(user_id=admin_id)
    rule, _ = await AutomationRuleService(sessions, env.client, queue).create(account_id, {
        "name": "Auto-close 7 days after resolved", "trigger": "time_in_status",
        "trigger_config": {"status": "resolved", "afterMinutes": 10080}, "conditions": [],
        "actions": [{"type": "change_status", "status": "closed"}]})
    gateway = TicketGateway(env.client, queue)
    quiet_handle, quiet = await create_ticket(env.client, queue, sessions, account_id, actor,
                                              subject="How do I reset my password?", priority="low")
    replied_handle, replied = await create_ticket(env.client, queue, sessions, account_id, actor,
                                                  subject="Reset link expired", priority="low")
    try:
        resolve = UpdateTicketInput(actor=actor, changes=TicketChanges(status=TicketStatus.RESOLVED))
        resolved = await gateway.update(account_id, quiet.id, resolve)
        await gateway.update(account_id, replied.id, resolve)
        await env.sleep(timedelta(days=3))
        await gateway.comment(account_id, replied.id, AddCommentInput(
            actor=actor, body="Still broken, sorry", author_type=AuthorType.CUSTOMER))  # reopens it
        await env.sleep(timedelta(days=4, minutes=1))

        async def closed() -> Ticket | None:
            row = await _row(sessions, account_id, quiet.id)
            return row if row.status == TicketStatus.CLOSED.value else None

        row = await _until(closed)
        assert row is not None, "the resolved ticket was not closed after 7 days"
        lateness = row.closed_at - (resolved.status_changed_at + timedelta(days=7))
        assert timedelta(0) <= lateness < timedelta(seconds=5)
        other = await _row(sessions, account_id, replied.id)
        assert other.status == TicketStatus.IN_PROGRESS.value and other.closed_at is None
        executions, _ = await AutomationRuleService(sessions, env.client, queue).executions(
            account_id, rule["id"], ticket_id=None, trigger=None, status=None, date_from=None, date_to=None,
            page=1, page_size=50)
        assert [(e["ticketId"], e["executionStatus"], e["causedBy"]["event"]) for e in executions] == [
            (quiet.id, "success", "time_in_status")]
        # The write's result in the workflow's history (what the Temporal UI shows) names the rule.
        history = await quiet_handle.fetch_history()
        results = [payload.data for event in history.events if event.HasField("marker_recorded_event_attributes")
                   for payload in event.marker_recorded_event_attributes.details["result"].payloads]
        assert any(f"automation:{rule['id']} success: change_status".encode() in data for data in results)

        # Resolved again: the rule is re-armed, 7 days from now.
        again = await gateway.update(account_id, replied.id, resolve)
        await env.sleep(timedelta(days=6, hours=23))
        assert (await _row(sessions, account_id, replied.id)).status == TicketStatus.RESOLVED.value
        await env.sleep(timedelta(hours=1, minutes=1))

        async def replied_closed() -> Ticket | None:
            row = await _row(sessions, account_id, replied.id)
            return row if row.status == TicketStatus.CLOSED.value else None

        closed_again = await _until(replied_closed)
        assert closed_again is not None, "the re-armed rule did not close the ticket resolved again"
        assert timedelta(0) <= closed_again.closed_at - (again.status_changed_at + timedelta(days=7)) < timedelta(seconds=5)
    finally:
        await _terminate(quiet_handle, replied_handle)


async def test_on_sla_breach_the_priority_goes_up_and_an_executive_is_emailed(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    env, queue = time_skipping_env, time_skipping_worker.task_queue
    account_id, admin_id = await _account(sessions, "Breach")
    async with sessions() as session, session.begin():
        executive = User(account_id=account_id, name="Eve Exec", email="eve@example.com")
        session.add(executive)
        await session.flush()
        executive_id = executive.id
    async with smtp_server() as (inbox, port):
        async with sessions() as session, session.begin():
            await NotificationSettingsService(session).put(account_id, {"email": {
                "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False, "username": "pulse",
                "password": "smtp-secret-2468", "from_address": "support@pulse.example"}}, None)
        await AutomationRuleService(sessions, env.client, queue).create(account_id, {
            "name": "Breached: raise and tell the executives", "trigger": "sla_breached", "conditions": [],
            "actions": [{"type": "change_priority", "priority": "increase"},
                        {"type": "send_notification", "channels": ["email"], "to": "user", "userId": executive_id,
                         "subject": "SLA breached"}]})
        handle, ticket = await create_ticket(env.client, queue, sessions, account_id, Actor(user_id=admin_id),
                                             subject="Critical security vulnerability", priority="high")
        try:
            await env.sleep(timedelta(minutes=61))  # high: first response due in 60 min

            async def raised() -> Ticket | None:
                row = await _row(sessions, account_id, ticket.id)
                return row if row.priority == "urgent" else None

            row = await _until(raised)
            assert row is not None and row.sla_status == "breached"
            assert row.sla_resolution_due == ticket.created_at + timedelta(minutes=240)  # re-targeted to urgent
            deadline = time.monotonic() + 30
            while not inbox.to("eve@example.com") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            [mail] = inbox.to("eve@example.com")
            assert "SLA breached" in mail["Subject"] and ticket.ticket_number in mail["Subject"]
        finally:
            await _terminate(handle)


async def test_a_time_rule_created_later_reaches_open_tickets_and_a_disabled_one_stops(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    from pulse.workflows.ticket import TicketWorkflow

    env, queue = time_skipping_env, time_skipping_worker.task_queue
    account_id, admin_id = await _account(sessions, "Later rules")
    actor = Actor(user_id=admin_id)
    handle, ticket = await create_ticket(env.client, queue, sessions, account_id, actor, subject="Waiting forever")
    gateway = TicketGateway(env.client, queue)
    rules = AutomationRuleService(sessions, env.client, queue)
    try:
        await gateway.update(account_id, ticket.id, UpdateTicketInput(
            actor=actor, changes=TicketChanges(status=TicketStatus.WAITING_CUSTOMER)))
        nudge = {"name": "Nudge after a day", "trigger": "time_in_status", "conditions": [],
                 "trigger_config": {"status": "waiting_customer", "afterMinutes": 1440},
                 "actions": [{"type": "add_tags", "tags": ["nudged"]}]}
        close = {"name": "Close after two days", "trigger": "time_in_status", "conditions": [],
                 "trigger_config": {"status": "waiting_customer", "afterMinutes": 2880},
                 "actions": [{"type": "change_status", "status": "closed"}]}
        await rules.create(account_id, nudge)
        closer, _ = await rules.create(account_id, close)

        async def armed() -> bool:
            state = await handle.query(TicketWorkflow.current_state)
            return len([i for i in state.agenda if i.kind == "automation"]) == 2

        assert await _until(armed), "the fan-out did not reach the open ticket"
        await rules.replace(account_id, closer["id"], {**close, "enabled": False}, None)

        async def disarmed() -> bool:
            state = await handle.query(TicketWorkflow.current_state)
            return len([i for i in state.agenda if i.kind == "automation"]) == 1

        assert await _until(disarmed), "the disabled rule stayed on the agenda"
        await env.sleep(timedelta(days=3))

        async def nudged() -> Ticket | None:
            row = await _row(sessions, account_id, ticket.id)
            return row if "nudged" in row.tags else None

        row = await _until(nudged)
        assert row is not None and row.status == TicketStatus.WAITING_CUSTOMER.value
    finally:
        await _terminate(handle)
