"""The ticket workflow's lifecycle, on the time-skipping server with real activities."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pulse.db import SessionFactory
from pulse.domain.commands import Actor, AddCommentInput, UpdateTicketInput
from pulse.services.auth import create_account_with_admin
from pulse.workflows.ticket import TicketWorkflow
from tests.workflows.conftest import create_ticket


async def start_ticket(env: WorkflowEnvironment, worker: Worker, sessions: SessionFactory, **fields):
    async with sessions() as session, session.begin():
        account_id, user_id, _ = await create_account_with_admin(session, "Workflow tests")
    handle, ticket = await create_ticket(env.client, worker.task_queue, sessions, account_id, Actor(user_id=user_id),
                                         **fields)
    return handle, ticket, user_id


async def test_closing_a_ticket_ends_its_workflow(time_skipping_env, time_skipping_worker, sessions) -> None:
    handle, ticket, user_id = await start_ticket(time_skipping_env, time_skipping_worker, sessions)
    assert ticket.number >= 1 and ticket.status == "open"
    closed = await handle.execute_update(
        TicketWorkflow.update, UpdateTicketInput(actor=Actor(user_id=user_id), changes={"status": "closed"})
    )
    assert closed.status == "closed" and closed.closed_at is not None
    await handle.result()  # the run has ended
    description = await handle.describe()
    assert description.status is not None and description.status.name == "COMPLETED"


async def test_an_invalid_transition_is_rejected_before_it_reaches_history(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    handle, _, user_id = await start_ticket(time_skipping_env, time_skipping_worker, sessions, status="waiting_customer")
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(
            TicketWorkflow.update, UpdateTicketInput(actor=Actor(user_id=user_id), changes={"status": "open"})
        )
    assert failure.value.cause.type == "invalid_transition"
    assert "in_progress, resolved, closed" in str(failure.value.cause)
    accepted = [e async for e in handle.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert len(accepted) == 1  # only the create: the rejected update never reached history


async def test_an_idle_open_ticket_wakes_only_for_its_sla_thresholds(
    time_skipping_env, time_skipping_worker, sessions
) -> None:
    handle, _, user_id = await start_ticket(time_skipping_env, time_skipping_worker, sessions)
    events_before = len([e async for e in handle.fetch_history_events()])
    await time_skipping_env.sleep(timedelta(days=30))
    result = await handle.execute_update(
        TicketWorkflow.add_comment, AddCommentInput(actor=Actor(user_id=user_id), body="Still there?")
    )
    assert result.ticket.response_count == 1
    state = await handle.query(TicketWorkflow.current_state)
    assert state.version == result.ticket.version
    events = [e async for e in handle.fetch_history_events()]
    # In 30 days: one timer per SLA threshold (first response + resolution, at risk + breach),
    # each with its workflow task and SLA write, plus the update's own events. No polling.
    timers = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert len(timers) == 4
    assert len(events) - events_before < 12 + 4 * 6
