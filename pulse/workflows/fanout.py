"""RulesFanOutWorkflow: tells every open ticket of an account that its rules changed
(``rules-<account>-<generation>``), so that each re-computes its agenda.

Durable and restart-safe: pages of open tickets (by id) are signalled by an activity that
heartbeats its cursor, so a retried page resumes where the last one stopped; a ticket signalled
twice re-computes once (the signal carries the generation, and a ticket ignores one it has
seen). Tickets created after the change read the new rules when they are created.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pulse.activities.fanout import FanOutActivities
    from pulse.domain.commands import FanOutInput, FanOutPage, FanOutProgress
    from pulse.workflows.bulk import RETRY_FOREVER

PAGE_TIMEOUT = timedelta(minutes=10)
PAGE_HEARTBEAT_TIMEOUT = timedelta(seconds=20)


@workflow.defn
class RulesFanOutWorkflow:
    def __init__(self) -> None:
        self.signalled = 0

    @workflow.run
    async def run(self, input: FanOutInput) -> FanOutProgress:
        after_id = 0
        pages = 0
        while True:
            progress = await workflow.execute_activity(
                FanOutActivities.signal_open_tickets,
                FanOutPage(account_id=input.account_id, generation=input.generation, after_id=after_id,
                           page_size=input.page_size),
                start_to_close_timeout=PAGE_TIMEOUT, heartbeat_timeout=PAGE_HEARTBEAT_TIMEOUT,
                retry_policy=RETRY_FOREVER, summary=f"rules {input.generation}: open tickets after id {after_id}",
            )
            self.signalled += progress.signalled
            pages += 1
            if progress.last_id is None:
                return FanOutProgress(signalled=self.signalled, last_id=None, pages=pages)
            after_id = progress.last_id

    @workflow.query
    def signalled_so_far(self) -> int:
        return self.signalled
