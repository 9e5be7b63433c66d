"""Starting inbound syncs: each account's Temporal Schedule (``maverick-sync-<account>``, every
``syncIntervalMinutes`` while the integration is enabled, auto-syncs and pulls; removed otherwise)
and the manual "sync now"; at the Maverick worker's start, every schedule pointed at its queue.
Workflows are addressed by name."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from pulse.db import SessionFactory
from pulse.domain.maverick import MaverickSettings
from pulse.domain.maverick_sync import FetchRequested, FetchTicketInput, SyncInput
from pulse.repositories.maverick import MaverickConfigRepository

log = logging.getLogger("pulse.maverick")

SYNC_WORKFLOW = "MaverickSyncWorkflow"
FETCH_WORKFLOW = "MaverickTicketFetchWorkflow"


def schedule_id(account_id: int) -> str:
    return f"maverick-sync-{account_id}"


class MaverickSyncScheduler:
    def __init__(self, temporal: Client, task_queue: str) -> None:
        self.temporal = temporal
        self.task_queue = task_queue

    def _schedule(self, account_id: int, settings: MaverickSettings) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(SYNC_WORKFLOW, SyncInput(account_id=account_id, trigger="schedule"),
                                               id=schedule_id(account_id), task_queue=self.task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=settings.sync_interval_minutes))]),
            # A sync still running when the next is due: the next is skipped, not queued.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )

    async def apply(self, account_id: int, settings: MaverickSettings) -> None:
        """Make the account's schedule match its config."""
        handle = self.temporal.get_schedule_handle(schedule_id(account_id))
        wanted = settings.enabled and settings.auto_sync and settings.sync_direction.pulls
        if not wanted:
            try:
                await handle.delete()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            return
        schedule = self._schedule(account_id, settings)
        try:
            await self.temporal.create_schedule(schedule_id(account_id), schedule)
        except ScheduleAlreadyRunningError:
            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await handle.update(replace)

    async def retarget(self, account_id: int) -> bool:
        """Point the account's schedule at this scheduler's task queue when it starts its syncs on
        another (a schedule created before the Maverick sync had a queue of its own and not saved
        since); True when it was changed. Nothing else of the schedule changes (its interval keeps
        its phase); no schedule, nothing to do. Idempotent: a second call changes nothing."""
        changed = False

        def point(described: ScheduleUpdateInput) -> ScheduleUpdate | None:
            nonlocal changed
            schedule = described.description.schedule
            action = schedule.action
            if not isinstance(action, ScheduleActionStartWorkflow) or action.task_queue == self.task_queue:
                return None
            action.task_queue = self.task_queue  # its input stays the encoded payload it was
            changed = True
            return ScheduleUpdate(schedule=schedule)

        try:
            await self.temporal.get_schedule_handle(schedule_id(account_id)).update(point)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return changed

    async def retarget_all(self, sessions: SessionFactory) -> int:
        """:meth:`retarget` for every account whose config wants a schedule; how many changed.
        One account's failure is logged and the others still go."""
        async with sessions() as session:
            account_ids = await MaverickConfigRepository(session).scheduled_account_ids()
        changed = 0
        for account_id in account_ids:
            try:
                changed += await self.retarget(account_id)
            except RPCError as error:
                log.warning("the sync schedule of account %s was not pointed at %s: %s",
                            account_id, self.task_queue, error.message)
        return changed

    async def fetch(self, account_id: int, maverick_ticket_id: str, event_id: str, event_type: str | None = None) -> None:
        """A webhook announced a change of this Maverick ticket: its fetch workflow reads it (one
        per Maverick ticket at a time; a signal while it runs makes it read once more)."""
        await self.temporal.start_workflow(
            FETCH_WORKFLOW, FetchTicketInput(account_id=account_id, maverick_ticket_id=maverick_ticket_id),
            id=f"maverick-fetch-{account_id}-{maverick_ticket_id}"[:1000], task_queue=self.task_queue,
            start_signal="changed", start_signal_args=[FetchRequested(event_id=event_id, event_type=event_type)])

    async def start_now(self, account_id: int, run_id: int) -> None:
        await self.temporal.start_workflow(SYNC_WORKFLOW, SyncInput(account_id=account_id, trigger="manual",
                                                                    run_id=run_id),
                                           id=f"{schedule_id(account_id)}-run-{run_id}", task_queue=self.task_queue)
