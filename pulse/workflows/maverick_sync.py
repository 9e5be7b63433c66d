"""MaverickSyncWorkflow: one inbound sync run of an account — started by the account's Temporal
Schedule every ``syncIntervalMinutes`` (``maverick-sync-<account>``) or by the manual sync
endpoint. It pages "tickets changed since" the stored cursor, one activity per page (each page's
tickets are created or updated through their own workflows), and records the run."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pulse.activities.maverick import MaverickSyncActivities
    from pulse.domain.maverick_sync import (
        FetchRequested,
        FetchTicketInput,
        FinishSync,
        PullPage,
        StartSync,
        SyncInput,
        fields_only,
    )

STEP_TIMEOUT = timedelta(seconds=30)
PAGE_TIMEOUT = timedelta(minutes=10)
# Maverick down for a while: a page is retried with backoff for about half an hour, then the run
# ends failed; the next scheduled run starts again from the stored cursor.
PAGE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=2),
                         maximum_attempts=20, non_retryable_error_types=["maverick_refused"])
STEP_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


@workflow.defn
class MaverickSyncWorkflow:
    @workflow.run
    async def run(self, input: SyncInput) -> None:
        if not input.started:
            started = await workflow.execute_activity(
                MaverickSyncActivities.start_sync_run,
                StartSync(account_id=input.account_id, trigger=input.trigger, run_id=input.run_id),
                start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY, summary="open the sync run")
            if started.skip_reason is not None:
                return
            input = input.model_copy(update={"run_id": started.run_id, "since": started.since, "started": True})
        assert input.run_id is not None
        status, error = "succeeded", None
        while True:
            try:
                page = await workflow.execute_activity(
                    MaverickSyncActivities.pull_sync_page,
                    PullPage(account_id=input.account_id, run_id=input.run_id, since=input.since, cursor=input.cursor,
                             cursor_frozen=input.cursor_frozen),
                    start_to_close_timeout=PAGE_TIMEOUT, retry_policy=PAGE_RETRY,
                    summary=f"pull a page of tickets changed since {input.since}")
            except ActivityError as failure:
                status, error = "failed", str(failure.cause or failure)
                break
            if page.failed:
                input.cursor_frozen = True
                status = "partial"
            if page.next_cursor is None:
                break
            input.cursor = page.next_cursor
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input)
        if input.cursor_frozen and status == "succeeded":
            status = "partial"
        await workflow.execute_activity(
            MaverickSyncActivities.finish_sync_run,
            FinishSync(account_id=input.account_id, run_id=input.run_id, status=status, error=error),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY, summary=f"close the sync run ({status})")


FETCH_TIMEOUT = timedelta(seconds=60)
# A retry due later than this waits on a durable timer, not inside the workflow task: a Maverick
# that is down for long neither holds the task open nor keeps a stopping worker waiting.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=2)
# From this patch on the fetch is a regular activity. As a local activity it held its workflow
# task, and so one of the worker's workflow-task slots, while it waited for the ticket's own
# workflow — which needs a slot of the same worker to apply the change. With more fetches in flight
# than slots (10), every slot waited on a ticket update that could not start until a workflow
# task's heartbeat gave one back: webhook → Pulse change took 7–12 s in the 5,000-ticket bench.
FETCH_ACTIVITY_PATCH = "maverick-fetch-regular-activity"
FETCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                          maximum_attempts=30, non_retryable_error_types=["maverick_refused"])


@workflow.defn
class MaverickTicketFetchWorkflow:
    """``maverick-fetch-<account>-<maverickTicketId>``: webhooks about one Maverick ticket, as
    signals; each round reads the ticket as it is now and applies it, and a signal that arrives
    meanwhile makes one more round (so the last change announced is the last one read). A round
    whose events all announced field changes reads the ticket alone (``FetchTicketInput.fields_only``)."""

    def __init__(self) -> None:
        self._wanted = 0
        self._announced: set[str | None] = set()  # the event types since the last round began

    @workflow.signal
    def changed(self, request: FetchRequested) -> None:
        self._wanted += 1
        self._announced.add(request.event_type)

    @workflow.run
    async def run(self, input: FetchTicketInput) -> None:
        while True:
            asked = self._wanted
            # Only the activity's input depends on it (no command changes: old runs replay).
            this_round = input.model_copy(update={"fields_only": fields_only(self._announced)})
            self._announced = set()
            summary = f"read Maverick ticket {input.maverick_ticket_id[:60]}"
            try:
                if workflow.patched(FETCH_ACTIVITY_PATCH):
                    await workflow.execute_activity(
                        MaverickSyncActivities.fetch_and_apply, this_round, start_to_close_timeout=FETCH_TIMEOUT,
                        retry_policy=FETCH_RETRY, summary=summary)
                else:  # runs that started as local activities replay as such
                    await workflow.execute_local_activity(
                        MaverickSyncActivities.fetch_and_apply, this_round, start_to_close_timeout=FETCH_TIMEOUT,
                        retry_policy=FETCH_RETRY, local_retry_threshold=LOCAL_RETRY_THRESHOLD, summary=summary)
            except ActivityError as failure:
                workflow.logger.warning("Maverick ticket %s not applied: %s", input.maverick_ticket_id, failure.cause)
                return
            if self._wanted <= asked:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._wanted <= asked:
                    return
