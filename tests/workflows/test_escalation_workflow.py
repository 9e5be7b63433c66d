"""The brief's Workflow 3, "Escalation Path", on the time-skipping server with the real engine:
urgent ticket → no response in 15 min → level 1 to the security team → no resolution in 2 h →
level 2 to the manager → 80 % of the resolution SLA → director notified → breach."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from pulse.db import SessionFactory
from pulse.domain.commands import Actor
from pulse.models import Team, TeamMember, Ticket, User
from pulse.repositories.escalations import EscalationRuleRepository
from pulse.repositories.sla import TicketEventRepository
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin
from pulse.services.escalations import EscalationRuleService
from pulse.workflows.ticket import TicketWorkflow
from tests.workflows.conftest import create_ticket


async def _people(sessions: SessionFactory) -> dict[str, int]:
    async with sessions() as session, session.begin():
        account_id, admin_id, _ = await create_account_with_admin(session, "Escalation path")
        people = {}
        for name in ("analyst", "manager", "director"):
            user = User(account_id=account_id, name=name, email=f"{name}@example.com")
            session.add(user)
            await session.flush()
            people[name] = user.id
        team = Team(account_id=account_id, name="Security", manager_user_id=people["manager"])
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=people["analyst"]))
    return {"account": account_id, "admin": admin_id, "team": team.id, **people}


async def _ticket_row(sessions: SessionFactory, account_id: int, ticket_id: int) -> Ticket:
    async with sessions() as session:
        row = await TicketRepository(session).get(account_id, ticket_id)
        assert row is not None
        return row


async def _sla_events(sessions: SessionFactory, ticket_id: int) -> list[tuple[str, str | None]]:
    async with sessions() as session:
        return [(e.event_type, e.metric) for e in await TicketEventRepository(session).for_ticket(ticket_id)]


async def _history(sessions: SessionFactory, ticket_id: int, count: int, timeout: float = 15) -> list[Any]:
    """The ticket's escalations once there are ``count`` (the workflow task after a skip runs in
    real time)."""
    deadline = time.monotonic() + timeout
    while True:
        async with sessions() as session:
            rows = await EscalationRuleRepository(session).history(ticket_id)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_the_escalation_path_of_an_urgent_ticket_runs_level_by_level_to_the_breach(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    env, queue = time_skipping_env, time_skipping_worker.task_queue
    ids = await _people(sessions)
    rules = EscalationRuleService(sessions, env.client, queue)
    level_1 = await rules.create(ids["account"], {
        "name": "No response in 15 min", "priority": "urgent", "level": 1, "when": {"noFirstResponseMinutes": 15},
        "escalate_to": "team", "escalate_to_team_id": ids["team"], "notification_channels": ["in_app"],
        "add_internal_note": True, "internal_note_template": "{{ticketNumber}} escalated to {{escalateTo}}"})
    level_2 = await rules.create(ids["account"], {
        "name": "Not resolved in 2 h", "priority": "urgent", "level": 2, "when": {"afterMinutes": 120},
        "escalate_to": "manager", "notification_channels": ["in_app"]})
    level_3 = await rules.create(ids["account"], {
        "name": "80 % of resolution", "priority": "urgent", "level": 3,
        "when": {"slaPercent": 80, "metric": "resolution"}, "escalate_to": "specific_user",
        "escalate_to_user_id": ids["director"], "notification_channels": ["in_app"]})

    handle, ticket = await create_ticket(env.client, queue, sessions, ids["account"], Actor(user_id=ids["admin"]),
                                         subject="Critical security vulnerability", priority="urgent",
                                         assigned_to_team_id=ids["team"])
    try:
        created = ticket.created_at
        await env.sleep(timedelta(minutes=16))
        first = await _history(sessions, ticket.id, 1)
        assert [(e.rule_id, e.level, e.target_user_ids) for e in first] == [(level_1["id"], 1, [ids["analyst"]])]
        assert first[0].threshold_at == created + timedelta(minutes=15)

        await env.sleep(timedelta(minutes=105))  # 2 h 1 min
        second = await _history(sessions, ticket.id, 2)
        assert [(e.rule_id, e.target_user_ids) for e in second[1:]] == [(level_2["id"], [ids["manager"]])]

        await env.sleep(timedelta(minutes=72))  # 3 h 13 min: past 80 % of the 240-minute resolution target
        third = await _history(sessions, ticket.id, 3)
        assert [(e.rule_id, e.target_user_ids) for e in third[2:]] == [(level_3["id"], [ids["director"]])]
        assert third[2].threshold_at == created + timedelta(minutes=192)
        assert ("sla_at_risk", "resolution") in await _sla_events(sessions, ticket.id)

        await env.sleep(timedelta(minutes=48))  # 4 h 1 min: resolution breached
        deadline = time.monotonic() + 15
        while ("sla_breached", "resolution") not in await _sla_events(sessions, ticket.id):
            assert time.monotonic() < deadline, await _sla_events(sessions, ticket.id)
            await asyncio.sleep(0.05)
        row = await _ticket_row(sessions, ids["account"], ticket.id)
        assert row.sla_status == "breached" and row.sla_resolution_met is False
        assert (row.escalation_count, row.escalation_level) == (3, 3)
        assert row.internal_note_count == 1  # level 1's note
        assert len(await _history(sessions, ticket.id, 4, timeout=0)) == 3  # each level once
        state = await handle.query(TicketWorkflow.current_state)
        assert {item.key.split("@")[0] for item in state.agenda if item.kind == "escalation"} <= {
            str(level_1["id"]), str(level_2["id"]), str(level_3["id"])}
    finally:
        await _terminate(handle)


async def _terminate(handle: WorkflowHandle) -> None:
    try:
        await handle.terminate("test over")
    except Exception:  # noqa: BLE001 - already ended
        pass
