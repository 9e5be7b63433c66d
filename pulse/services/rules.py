"""Account-wide rules that tickets' agendas read. Every change bumps the account's rules
generation in its own transaction and then starts the fan-out (``RulesFanOutWorkflow``) that
makes every open ticket re-compute its agenda. The escalation and automation rules use
``rules_changed``; agenda probes are the engine's own test source."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from pulse.db import SessionFactory
from pulse.domain.commands import FanOutInput
from pulse.repositories.rules import RulesRepository


def fanout_workflow_id(account_id: int, generation: int) -> str:
    return f"rules-{account_id}-{generation}"


class RulesService:
    def __init__(self, sessions: SessionFactory, temporal: Client, task_queue: str) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.task_queue = task_queue

    async def start_fanout(self, account_id: int, generation: int, *, page_size: int = 2000) -> str:
        workflow_id = fanout_workflow_id(account_id, generation)
        await self.temporal.start_workflow(
            "RulesFanOutWorkflow", FanOutInput(account_id=account_id, generation=generation, page_size=page_size),
            id=workflow_id, task_queue=self.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"rules of account {account_id} changed (generation {generation})",
        )
        return workflow_id

    async def add_agenda_probe(self, account_id: int, after_minutes: int) -> tuple[int, str]:
        """Add a probe (due ``after_minutes`` after each ticket's creation); the fan-out's id."""
        async with self.sessions() as session, session.begin():
            rules = RulesRepository(session)
            await rules.add_probe(account_id, after_minutes)
            generation = await rules.bump_generation(account_id)
        return generation, await self.start_fanout(account_id, generation)
