"""The inbound Maverick sync's activities: open a sync run, pull and apply one page of changed
tickets, close the run. They get their clients in ``__init__``; each call uses short sessions."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from pulse.db import SessionFactory
from pulse.domain.maverick import MaverickSettings
from pulse.domain.maverick_sync import (
    FetchTicketInput,
    FinishSync,
    PageResult,
    PullPage,
    StartSync,
    SyncStarted,
    since_for,
)
from pulse.gateway import TicketGateway
from pulse.integrations.maverick import MaverickError, NotFoundAtMaverick
from pulse.repositories.maverick import MaverickConfigRepository
from pulse.repositories.maverick_sync import SyncRunRepository
from pulse.secretbox import SecretBox
from pulse.services.maverick import stored_settings
from pulse.services.maverick_sync import MaverickImporter, MaverickPuller, client_for, remote_of


class MaverickSyncActivities:
    def __init__(self, sessions: SessionFactory, temporal: Client, ticket_task_queue: str, box: SecretBox) -> None:
        self.sessions = sessions
        self.box = box
        self.importer = MaverickImporter(sessions, TicketGateway(temporal, ticket_task_queue))
        self.puller = MaverickPuller(sessions, self.importer, self.settings)

    async def settings(self, account_id: int) -> MaverickSettings | None:
        async with self.sessions() as session:
            row = await MaverickConfigRepository(session).get(account_id)
            return stored_settings(row, self.box) if row is not None else None

    @activity.defn
    async def start_sync_run(self, input: StartSync) -> SyncStarted:
        """The run's row (made here for a scheduled run) and where to start: the stored cursor.
        A run of an integration that is disabled or does not pull ends at once, saying why."""
        async with self.sessions() as session, session.begin():
            config = await MaverickConfigRepository(session).get(input.account_id)
            settings = stored_settings(config, self.box) if config is not None else None
            runs = SyncRunRepository(session)
            run_id = input.run_id
            if run_id is None:
                direction = settings.sync_direction.value if settings is not None else "inbound"
                run_id = (await runs.start(input.account_id, direction, input.trigger)).id
            reason = None
            if settings is None or not settings.enabled:
                reason = "the Maverick integration is not enabled"
            elif not settings.sync_direction.pulls:
                reason = "syncDirection is outbound: nothing is pulled"
            if reason is not None:
                await runs.add_counts(run_id, pulled=0, created=0, updated=0,
                                      skipped=[{"maverickTicketId": None, "reason": reason}], errors=[])
                await runs.finish(run_id, "skipped", [])
            return SyncStarted(run_id=run_id, since=since_for(config.sync_cursor if config else None),
                               skip_reason=reason)

    @activity.defn
    async def pull_sync_page(self, input: PullPage) -> PageResult:
        try:
            return await self.puller.pull_page(input.account_id, input.run_id, input.since, input.cursor,
                                               input.cursor_frozen)
        except MaverickError as error:
            # Maverick refused the call itself (a rejected key, a cursor it no longer knows): no
            # retry will help; the run ends failed and says why.
            raise ApplicationError(str(error), type="maverick_refused", non_retryable=True) from None

    @activity.defn
    async def finish_sync_run(self, input: FinishSync) -> None:
        errors = [{"maverickTicketId": None, "error": input.error}] if input.error else []
        async with self.sessions() as session, session.begin():
            await SyncRunRepository(session).finish(input.run_id, input.status, errors)

    @activity.defn
    async def fetch_and_apply(self, input: FetchTicketInput) -> str:
        """Read one Maverick ticket as it is now and apply it (what a webhook asks for); its
        comments and documents too unless ``fields_only``."""
        settings = await self.settings(input.account_id)
        if settings is None or not settings.enabled or not settings.sync_direction.pulls:
            return "skipped: the integration does not pull"
        try:
            async with client_for(settings) as client:
                remote = await client.ticket(input.maverick_ticket_id)
                applied = await self.importer.apply(input.account_id, settings, remote_of(remote), client,
                                                    fields_only=input.fields_only)
        except NotFoundAtMaverick:
            return "skipped: Maverick has no such ticket"
        except MaverickError as error:
            raise ApplicationError(str(error), type="maverick_refused", non_retryable=True) from None
        if applied.kind == "failed" or applied.unfinished:
            raise ApplicationError("; ".join(applied.reasons), type="apply_failed")  # retried
        return applied.kind

    def all(self) -> list[Callable[..., Any]]:
        return [self.start_sync_run, self.pull_sync_page, self.finish_sync_run, self.fetch_and_apply]
