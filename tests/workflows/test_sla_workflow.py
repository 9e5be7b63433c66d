"""The SLA clock in the ticket workflow, on the time-skipping server with the real activities and
PostgreSQL: exact breach instants on a business calendar, pause/resume, re-target, reopen, and
no timers while paused."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator, Callable
from zoneinfo import ZoneInfo

import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.service import RPCError
from temporalio.worker import Worker

from pulse.db import SessionFactory
from pulse.domain.calendar import BusinessCalendar, add_business_minutes, add_business_time, business_time_between
from pulse.domain.commands import (
    Actor,
    AddCommentInput,
    PauseSlaInput,
    ResumeSlaInput,
    UpdateTicketInput,
)
from pulse.models import Ticket
from pulse.repositories.sla import TicketEventRepository
from pulse.repositories.tickets import TicketRepository
from pulse.services.auth import create_account_with_admin
from pulse.services.sla import SlaSettingsService
from pulse import search_attributes as sa
from pulse.workflows.ticket import TicketWorkflow
from tests.workflows.conftest import create_ticket

NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = {"timezone": "America/New_York",
                "weekly_hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}}


class Desk:
    """One account with its SLA settings, and tickets started on the time-skipping server."""

    def __init__(self, env: WorkflowEnvironment, worker: Worker, sessions: SessionFactory) -> None:
        self.env, self.worker, self.sessions = env, worker, sessions
        self.account_id = 0
        self.actor = Actor()
        self.handles: list[WorkflowHandle] = []

    async def open(self, *, calendar: bool = False, **policy: Any) -> "Desk":
        async with self.sessions() as session, session.begin():
            self.account_id, user_id, _ = await create_account_with_admin(session, "SLA workflow tests")
            self.actor = Actor(user_id=user_id)
            settings = SlaSettingsService(session)
            values = dict(policy)
            if calendar:
                values["calendar_id"] = (await settings.create_calendar(
                    self.account_id, {"name": "Office", **NINE_TO_FIVE})).id
            if values:
                await settings.put_policy(self.account_id, "medium", values, None)
        return self

    async def create(self, **fields: Any) -> tuple[WorkflowHandle, Any]:
        handle, ticket = await create_ticket(self.env.client, self.worker.task_queue, self.sessions, self.account_id,
                                             self.actor, **{"subject": "The clock is ticking", **fields})
        self.handles.append(handle)
        return handle, ticket

    async def update(self, handle: WorkflowHandle, **changes: Any) -> Any:
        return await handle.execute_update(TicketWorkflow.update, UpdateTicketInput(actor=self.actor, changes=changes))

    async def reply(self, handle: WorkflowHandle) -> Any:
        result = await handle.execute_update(TicketWorkflow.add_comment,
                                             AddCommentInput(actor=self.actor, body="On it."))
        return result.ticket

    async def row(self, ticket_id: int) -> Ticket:
        async with self.sessions() as session:
            row = await TicketRepository(session).get(self.account_id, ticket_id)
            assert row is not None
            return row

    async def eventually(self, ticket_id: int, check: Callable[[Ticket], bool], timeout: float = 10) -> Ticket:
        """The ticket row once ``check`` holds (the workflow task after a skip runs in real time)."""
        deadline = time.monotonic() + timeout
        while True:
            row = await self.row(ticket_id)
            if check(row) or time.monotonic() > deadline:
                return row
            await asyncio.sleep(0.05)

    async def skip_to(self, instant: datetime) -> None:
        now = await self.env.get_current_time()
        assert instant > now, (instant, now)
        await self.env.sleep(instant - now)

    async def event_types(self, ticket_id: int) -> list[tuple[str, str | None]]:
        async with self.sessions() as session:
            return [(e.event_type, e.metric) for e in await TicketEventRepository(session).for_ticket(ticket_id)
                    if e.event_type.startswith("sla_")]


@pytest_asyncio.fixture
async def desk(time_skipping_env, time_skipping_worker, sessions) -> AsyncIterator[Desk]:
    """A fresh account; its tickets' workflows are terminated afterwards, because a timer firing
    for a ticket whose worker is gone would stop the shared time-skipping server from skipping."""
    desk = Desk(time_skipping_env, time_skipping_worker, sessions)
    yield desk
    for handle in desk.handles:
        try:
            await handle.terminate("test over")
        except RPCError:
            pass  # already ended


async def history(handle: WorkflowHandle) -> list[Any]:
    return [event async for event in handle.fetch_history_events()]


def next_weekday_at(now: datetime, weekday: int, hour: int) -> datetime:
    """The next local ``weekday`` (0 = Monday) at ``hour``:00 in New York, at least a day ahead."""
    local = now.astimezone(NEW_YORK)
    day = local.date() + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK).astimezone(UTC)


async def test_a_ticket_waiting_over_a_weekend_breaches_at_the_exact_business_instant(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open(
        calendar=True, first_response_minutes=60, resolution_minutes=3 * 8 * 60)
    await desk.skip_to(next_weekday_at(await time_skipping_env.get_current_time(), 4, 15))  # Friday 15:00
    handle, ticket = await desk.create()
    calendar = BusinessCalendar(**NINE_TO_FIVE)
    due = add_business_minutes(calendar, ticket.created_at, 3 * 8 * 60)
    assert ticket.sla_resolution_due == due
    local_due = due.astimezone(NEW_YORK)
    assert (local_due.strftime("%a"), local_due.hour) == ("Wed", 15)  # Fri 2h + Mon 8h + Tue 8h + Wed 6h
    await desk.reply(handle)  # first response met: only resolution runs

    await desk.skip_to(due - timedelta(minutes=1))
    before = await desk.eventually(ticket.id, lambda row: row.sla_status == "at_risk")
    assert before.sla_status == "at_risk" and before.sla_breached_at is None

    await desk.skip_to(due + timedelta(minutes=1))
    after = await desk.eventually(ticket.id, lambda row: row.sla_status == "breached")
    assert after.sla_status == "breached"
    assert after.sla_breached_at == due  # the exact instant, not when the timer was processed
    assert after.sla_resolution_met is False and after.sla_resolution_due == due
    assert ("sla_breached", "resolution") in await desk.event_types(ticket.id)
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SLA_STATUS) == "breached"
    summaries = [json.loads(e.user_metadata.summary.data) for e in await history(handle)
                 if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert summaries == ["first response 80 % → at risk", "resolution 80 % → at risk", "resolution 100 % → breached"]


async def test_pause_and_resume_shift_due_dates_by_exactly_the_paused_business_time(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open(
        calendar=True, first_response_minutes=240, resolution_minutes=960)
    monday_10 = next_weekday_at(await time_skipping_env.get_current_time(), 0, 10)
    await desk.skip_to(monday_10)
    handle, ticket = await desk.create()
    calendar = BusinessCalendar(**NINE_TO_FIVE)

    await desk.skip_to(monday_10 + timedelta(hours=1))
    paused = await handle.execute_update(TicketWorkflow.pause_sla, PauseSlaInput(actor=desk.actor, reason="vendor"))
    assert paused.sla_status == "paused" and paused.sla_paused_at is not None
    assert paused.sla_first_response_due == ticket.sla_first_response_due  # fixed while paused

    await desk.skip_to(monday_10 + timedelta(days=1))  # Tuesday 10:00
    timers = [e.event_type for e in await history(handle) if e.event_type in (
        EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_FIRED, EventType.EVENT_TYPE_TIMER_CANCELED)]
    assert timers.count(EventType.EVENT_TYPE_TIMER_STARTED) == len(timers) // 2  # none left armed while paused

    resumed = await handle.execute_update(TicketWorkflow.resume_sla, ResumeSlaInput(actor=desk.actor))
    assert resumed.sla_status == "on_time" and resumed.sla_paused_at is None
    async with sessions() as session:
        events = await TicketEventRepository(session).for_ticket(ticket.id)
    resumed_at = next(e.occurred_at for e in events if e.event_type == "sla_resumed")
    paused_for = business_time_between(calendar, paused.sla_paused_at, resumed_at)
    assert abs(paused_for - timedelta(minutes=420)) < timedelta(seconds=5)  # Mon 11-17 + Tue 9-10
    assert resumed.sla_total_paused_time == 420
    for before, after in ((ticket.sla_first_response_due, resumed.sla_first_response_due),
                          (ticket.sla_resolution_due, resumed.sla_resolution_due)):
        assert business_time_between(calendar, before, after) == paused_for  # exactly
        assert after == add_business_time(calendar, before, paused_for)


async def test_a_priority_upgrade_breaches_at_once_when_the_new_target_is_used_up(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open()
    handle, ticket = await desk.create(priority="medium")
    assert ticket.sla_first_response_due == ticket.created_at + timedelta(minutes=240)  # seeded default
    await time_skipping_env.sleep(timedelta(minutes=30))

    upgraded = await desk.update(handle, priority="urgent")
    assert upgraded.sla_status == "breached"
    assert upgraded.sla_first_response_met is False
    assert upgraded.sla_breached_at == upgraded.sla_first_response_due  # due = the moment of the change
    assert upgraded.sla_breached_at - ticket.created_at >= timedelta(minutes=30)
    assert upgraded.sla_resolution_due == ticket.created_at + timedelta(minutes=240)  # 30 used of urgent's 240
    assert upgraded.version == ticket.version + 1  # the SLA write does not bump the version
    assert await desk.event_types(ticket.id) == [
        ("sla_started", None), ("sla_retargeted", None), ("sla_breached", "first_response")]


async def test_reopen_resumes_the_resolution_clock_where_it_stopped(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open()
    handle, ticket = await desk.create(priority="medium")  # 240 / 1440 minutes, 24x7
    await time_skipping_env.sleep(timedelta(minutes=10))
    await desk.reply(handle)
    await time_skipping_env.sleep(timedelta(minutes=90))
    resolved = await desk.update(handle, status="resolved")
    assert resolved.sla_resolution_met is True and resolved.resolution_time == 100
    assert resolved.first_response_time == 10 and resolved.sla_first_response_met is True

    await time_skipping_env.sleep(timedelta(days=2))
    reopened = await desk.update(handle, status="in_progress")
    assert reopened.sla_resolution_met is None and reopened.resolution_time is None
    used_before = resolved.resolved_at - ticket.created_at  # 100 minutes (+ the test's real milliseconds)
    due = reopened.updated_at + timedelta(minutes=1440) - used_before
    assert reopened.sla_resolution_due == due

    await time_skipping_env.sleep(timedelta(minutes=1341))
    row = await desk.eventually(ticket.id, lambda r: r.sla_status == "breached")
    assert row.sla_breached_at == due
    assert row.first_response_time == 10  # a decided metric stays decided


async def test_a_paused_ticket_keeps_a_small_history_over_weeks(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open()
    handle, ticket = await desk.create(priority="urgent")
    waiting = await desk.update(handle, status="waiting_customer")
    assert waiting.sla_status == "paused"
    events_before = await history(handle)

    await time_skipping_env.sleep(timedelta(weeks=6))
    events_after = await history(handle)
    assert len(events_after) == len(events_before)  # no timer, no polling: nothing happened
    assert (await handle.describe()).status.name == "RUNNING"
    kinds = [e.event_type for e in events_after]
    # The timer armed at creation was cancelled by the pause; none since.
    assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == kinds.count(EventType.EVENT_TYPE_TIMER_CANCELED) == 1

    # The customer answers six weeks later: the clock resumes with the time it had left.
    back = await desk.update(handle, status="in_progress")
    assert back.sla_status == "on_time"
    assert back.sla_first_response_due - back.updated_at == ticket.sla_first_response_due - waiting.updated_at
    assert len(await history(handle)) < 60


async def test_edits_that_leave_the_due_instant_alone_keep_the_running_timer(
    desk: Desk, time_skipping_env, sessions
) -> None:
    await desk.open()
    handle, ticket = await desk.create(priority="medium")
    for subject in ("Printer on fire", "Printer on fire (2nd floor)", "Printer still on fire"):
        await desk.update(handle, subject=subject)
    kinds = [e.event_type for e in await history(handle)]
    assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == 1  # armed at creation, kept through three edits
    assert kinds.count(EventType.EVENT_TYPE_TIMER_CANCELED) == 0

    # A change of the instant re-arms it, and the kept timer still fires on time.
    await desk.update(handle, priority="high")
    kinds = [e.event_type for e in await history(handle)]
    assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == 2
    assert kinds.count(EventType.EVENT_TYPE_TIMER_CANCELED) == 1
    row = await desk.row(ticket.id)
    await desk.skip_to(row.sla_first_response_due + timedelta(minutes=1))
    breached = await desk.eventually(ticket.id, lambda r: r.sla_status == "breached")
    assert breached.sla_breached_at == row.sla_first_response_due
