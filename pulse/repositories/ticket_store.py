"""Every query of a ticket write (``pulse.services.ticket_engine``), in Core statements: the ticket
row under lock, its SLA ledger, the account's rules, timeline and outbox rows, comments, the
applied-command ledger that makes writes idempotent, and the outbox consumers' own rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, func, insert, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain import records, sla
from pulse.domain.agenda import AgendaProbe as ProbeRule
from pulse.domain.agenda import TicketRules
from pulse.domain.automation_eval import Execution
from pulse.domain.changes import TicketEvent
from pulse.domain.commands import TicketWrite
from pulse.domain.reports import StatusMark, slot_marks, summary_change
from pulse.repositories.automation import EXECUTIONS_CTES, AutomationRuleRepository, execution_parameters
from pulse.repositories.escalations import EscalationRuleRepository
from pulse.repositories.reports import ReportRollup
from pulse.models import (
    Account,
    AgendaProbe,
    AppliedCommand,
    Notification,
    OutboxDelivery,
    SlaCalendar,
    SlaPolicy,
    Team,
    Ticket,
    TicketCategory,
    TicketComment,
    TicketEvent as OutboxRow,
    TicketSlaClock,
    TicketType,
    TimelineEvent,
    User,
)

_TICKET_COLUMNS = [column for column in Ticket.__table__.columns if column.name not in ("search_vector", "search_public")]
_REFERENCE_TABLES: dict[str, Any] = {
    "assigned_to_user_id": User,
    "assigned_to_team_id": Team,
    "type_id": TicketType,
    "category_id": TicketCategory,
}


def _settings_json() -> tuple[Any, Any]:
    """The account's SLA policies and calendars, each as one JSON text (scalar subqueries)."""
    policies = select(func.coalesce(func.json_agg(literal_column("p.*")).cast(Text), "[]")).select_from(
        SlaPolicy.__table__.alias("p")).where(literal_column("p.account_id") == bindparam("account_id")).scalar_subquery()
    calendars = select(func.coalesce(func.json_agg(literal_column("c.*")).cast(Text), "[]")).select_from(
        SlaCalendar.__table__.alias("c")).where(literal_column("c.account_id") == bindparam("account_id")).scalar_subquery()
    return policies, calendars


_RECORD_OUTCOME_AND_EXECUTIONS = text(
    f"WITH {EXECUTIONS_CTES} INSERT INTO applied_commands (command_id, ticket_id, result) "
    "VALUES (:command_id, :ticket_id, CAST(:result AS jsonb))")


# Core statements, not the ORM's bulk insert (which builds and compiles one per call).
_INSERT_TIMELINE = insert(TimelineEvent.__table__)
_INSERT_OUTBOX = insert(OutboxRow.__table__).returning(OutboxRow.__table__.c.id, sort_by_parameter_order=True)

# The two statements every write starts with, built once (parameters: account_id, ticket_id, command_id).
_POLICIES, _CALENDARS = _settings_json()
_READ_FOR_WRITE = (
    select(*_TICKET_COLUMNS, Account.rules_generation, TicketSlaClock.ledger.label("sla_ledger"),
           select(AppliedCommand.result).where(AppliedCommand.command_id == bindparam("command_id"))
           .scalar_subquery().label("stored_outcome"),
           _POLICIES.label("policies_json"), _CALENDARS.label("calendars_json"))
    .join(Account, Account.id == Ticket.account_id)
    .outerjoin(TicketSlaClock, TicketSlaClock.ticket_id == Ticket.id)
    .where(Ticket.account_id == bindparam("account_id"), Ticket.id == bindparam("ticket_id"),
           Ticket.deleted_at.is_(None))
)
_LOCK_FOR_WRITE = _READ_FOR_WRITE.with_for_update(of=Ticket)
_ACCOUNT_FOR_CREATE = (
    select(Account.rules_generation, _POLICIES.label("policies_json"), _CALENDARS.label("calendars_json"),
           select(Ticket.id).where(Ticket.account_id == bindparam("account_id"), Ticket.id == bindparam("ticket_id"))
           .exists().label("ticket_exists"))
    .where(Account.id == bindparam("account_id")).with_for_update(read=True, key_share=True, of=Account)
)


@dataclass
class LockedTicket:
    ticket: records.Ticket | None
    generation: int
    ledger: sla.SlaLedger | None = None
    outcome: TicketWrite | None = None
    policies_json: str = "[]"
    calendars_json: str = "[]"
    exists: bool = False


_RULES_CACHE: dict[int, TicketRules] = {}
_RULES_CACHE_SIZE = 10_000


def _record(row: Any) -> records.Ticket:
    return records.Ticket.model_validate(dict(row._mapping))


class TicketStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- idempotency ---------------------------------------------------------------------------

    async def outcome(self, command_id: str) -> TicketWrite | None:
        stored = await self.session.scalar(select(AppliedCommand.result).where(AppliedCommand.command_id == command_id))
        return None if stored is None else TicketWrite.model_validate(stored)

    async def record_outcome(self, command_id: str, ticket_id: int, outcome: TicketWrite, *, account_id: int = 0,
                             executions: list[Execution] | None = None) -> None:
        """The write's outcome (a retried command answers it), and in the same statement the
        automation rules' evaluations of the write (``executions``: its audit trail)."""
        result = outcome.model_dump(mode="json")
        if not executions:
            await self.session.execute(insert(AppliedCommand), {
                "command_id": command_id, "ticket_id": ticket_id, "result": result})
            return
        await self.session.execute(_RECORD_OUTCOME_AND_EXECUTIONS, {
            "command_id": command_id, "result": json.dumps(result),
            **execution_parameters(account_id, ticket_id, executions)})

    # -- the ticket ----------------------------------------------------------------------------

    async def lock_for_write(self, account_id: int, ticket_id: int, command_id: str, *,
                             lock: bool = True) -> "LockedTicket":
        """Everything a write reads, in one round trip: the live ticket locked for this
        transaction, the account's rules generation, the ticket's SLA ledger, the command's stored
        outcome (a retry), and the account's SLA policies and calendars as JSON text. ``lock``
        False: the same without the lock (an automation dry run, which writes nothing)."""
        row = (await self.session.execute(_LOCK_FOR_WRITE if lock else _READ_FOR_WRITE, {
            "account_id": account_id, "ticket_id": ticket_id, "command_id": command_id})).one_or_none()
        if row is None:
            return LockedTicket(ticket=None, generation=0, outcome=await self.outcome(command_id))
        values = dict(row._mapping)
        ledger = values.pop("sla_ledger")
        stored = values.pop("stored_outcome")
        return LockedTicket(
            ticket=records.Ticket.model_validate(values), generation=int(values.pop("rules_generation")),
            ledger=None if ledger is None else sla.SlaLedger.model_validate(ledger),
            outcome=None if stored is None else TicketWrite.model_validate(stored),
            policies_json=values.pop("policies_json"), calendars_json=values.pop("calendars_json"),
        )

    async def read(self, account_id: int, ticket_id: int) -> records.Ticket | None:
        """The ticket as stored, deleted or not (no lock)."""
        row = (await self.session.execute(
            select(*_TICKET_COLUMNS).where(Ticket.account_id == account_id, Ticket.id == ticket_id)
        )).one_or_none()
        return None if row is None else _record(row)

    async def account_for_create(self, account_id: int, ticket_id: int) -> "LockedTicket":
        """What a create reads, in one round trip: whether the ticket exists already (a create
        repeated by a new run), the account's rules generation, locked ``FOR KEY SHARE`` until
        the commit (a rules change locks the row ``FOR UPDATE`` before it bumps the generation, so
        it waits for this create and its fan-out finds the new ticket, or this create waits for
        the change and sees it), and its SLA policies and calendars. ``KEY SHARE``, not ``SHARE``:
        the ``UPDATE`` that numbers tickets (``FOR NO KEY UPDATE``) does not wait for it."""
        row = (await self.session.execute(_ACCOUNT_FOR_CREATE, {"account_id": account_id, "ticket_id": ticket_id})).one()
        return LockedTicket(ticket=None, generation=int(row.rules_generation), policies_json=row.policies_json,
                            calendars_json=row.calendars_json, exists=bool(row.ticket_exists))


    async def insert(self, ticket: records.Ticket, priority_rank: int) -> None:
        """The new row, with its search documents (subject A, description B) built in the same
        statement."""
        values = ticket.model_dump()
        values["priority_rank"] = priority_rank
        document = func.pulse_tsvector_append(func.pulse_search_part(values["subject"], literal_column("'A'")),
                                              func.pulse_search_part(values["description"], literal_column("'B'")))
        await self.session.execute(insert(Ticket).values(**values, search_vector=document, search_public=document))

    async def update(self, ticket_id: int, columns: dict[str, Any]) -> None:
        if columns:
            await self.session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**columns))

    async def missing_references(self, account_id: int, references: dict[str, int]) -> list[str]:
        """The reference fields whose id names no row of the account (one query per field given)."""
        missing = []
        for field, value in references.items():
            table = _REFERENCE_TABLES[field]
            found = await self.session.scalar(select(table.id).where(table.account_id == account_id, table.id == value))
            if found is None:
                missing.append(field)
        return missing

    async def auto_assignment_rotation(self, account_id: int, type_id: int) -> int | None:
        """The rotation new tickets of this type are assigned from, if auto-assignment is on."""
        return await self.session.scalar(select(TicketType.rotation_id).where(
            TicketType.account_id == account_id, TicketType.id == type_id,
            TicketType.auto_assignment_enabled.is_(True)))

    # -- comments --------------------------------------------------------------------------------

    async def add_comment(self, values: dict[str, Any]) -> records.Comment:
        row = (await self.session.execute(insert(TicketComment).values(**values).returning(
            *TicketComment.__table__.columns))).one()
        return records.Comment.model_validate(dict(row._mapping))

    # -- the SLA clock ---------------------------------------------------------------------------

    async def store_ledger(self, ticket_id: int, ledger: sla.SlaLedger) -> None:
        value = ledger.model_dump(mode="json")
        await self.session.execute(
            pg_insert(TicketSlaClock).values(ticket_id=ticket_id, ledger=value)
            .on_conflict_do_update(index_elements=["ticket_id"], set_={"ledger": value})
        )

    # -- rules -----------------------------------------------------------------------------------

    async def rules(self, account_id: int, generation: int) -> TicketRules:
        """The account's rules at ``generation``: read once per generation and process (every
        change bumps the generation, so a cached one is never stale)."""
        cached = _RULES_CACHE.get(account_id)
        if cached is not None and cached.generation == generation:
            return cached
        probes = await self.session.execute(
            select(AgendaProbe.id, AgendaProbe.after_minutes).where(AgendaProbe.account_id == account_id)
            .order_by(AgendaProbe.id)
        )
        rules = TicketRules(generation=generation,
                            probes=[ProbeRule(id=row.id, after_minutes=row.after_minutes) for row in probes],
                            escalations=await EscalationRuleRepository(self.session).enabled(account_id),
                            automations=await AutomationRuleRepository(self.session).enabled(account_id))
        if len(_RULES_CACHE) >= _RULES_CACHE_SIZE:
            _RULES_CACHE.pop(next(iter(_RULES_CACHE)))
        _RULES_CACHE[account_id] = rules
        return rules

    # -- timeline and outbox ---------------------------------------------------------------------

    async def add_events(self, ticket: records.Ticket, events: list[TicketEvent]) -> list[int]:
        """One timeline row and one outbox row per event (two multi-row INSERTs); the outbox ids."""
        if not events:
            return []
        timeline, outbox = [], []
        for event in events:
            timeline.append({
                "account_id": ticket.account_id, "ticket_id": ticket.id, "event_type": event.type,
                "actor": event.actor.kind, "actor_user_id": event.actor.user_id, "field": event.field,
                "from_value": event.from_value, "to_value": event.to_value, "data": event.data,
                "created_at": event.occurred_at,
            })
            outbox.append({
                "account_id": ticket.account_id, "ticket_id": ticket.id, "event_type": event.type,
                "metric": event.data.get("metric"),
                "data": {**event.data, "actor": event.actor.kind, "userId": event.actor.user_id,
                         "field": event.field, "from": event.from_value, "to": event.to_value},
                "occurred_at": event.occurred_at,
            })
        await self.session.execute(_INSERT_TIMELINE, timeline)
        await self._add_report_marks(ticket, events)
        return list(await self.session.scalars(_INSERT_OUTBOX, outbox))

    async def add_report_summary(self, before: records.Ticket | None, after: records.Ticket) -> None:
        """The summary's rollup, in the write's transaction: what the write changed of the ticket's
        figures (usually nothing)."""
        await ReportRollup(self.session).add_summary(after.account_id, summary_change(before, after))

    async def _add_report_marks(self, ticket: records.Ticket, events: list[TicketEvent]) -> None:
        """The reports' rollup, in the write's transaction: a creation or status change adds its
        marks; a delete takes the ticket's whole history back out (deleted tickets count nowhere)."""
        rollup = ReportRollup(self.session)
        if any(event.type == "ticket_deleted" for event in events):
            await rollup.add(ticket.account_id, slot_marks(await rollup.history(ticket.id), sign=-1))
            return
        marks = [StatusMark(at=event.occurred_at, from_status=None, to_status=str(event.data.get("status", "open")))
                 if event.type == "ticket_created" else
                 StatusMark(at=event.occurred_at, from_status=str(event.from_value), to_status=str(event.to_value))
                 for event in events if event.type in ("ticket_created", "status_changed")]
        await rollup.add(ticket.account_id, slot_marks(marks))


class OutboxStore:
    """What the outbox's consumers read and write (each in its own short transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def event(self, event_id: int) -> OutboxRow | None:
        return await self.session.get(OutboxRow, event_id)

    async def claim(self, event_id: int, consumer: str) -> bool:
        """Record the delivery; False when it was done already (a retried activity)."""
        claimed = await self.session.scalar(
            pg_insert(OutboxDelivery).values(event_id=event_id, consumer=consumer)
            .on_conflict_do_nothing().returning(OutboxDelivery.event_id)
        )
        return claimed is not None

    async def active_users(self, account_id: int, user_ids: list[int]) -> list[int]:
        rows = await self.session.scalars(select(User.id).where(User.account_id == account_id, User.id.in_(user_ids)))
        return list(rows)

    async def notify(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(pg_insert(Notification).values(rows).on_conflict_do_nothing())
