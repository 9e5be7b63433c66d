"""SLA queries: calendars, policies (seeded per account on first use), the ticket event outbox and
compliance aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Float, and_, case, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.domain.ids import is_storable_id
from pulse.domain.sla import DEFAULT_AT_RISK_PERCENT, DEFAULT_PAUSE_STATUSES, DEFAULT_TARGETS
from pulse.domain.tickets import PRIORITY_SEVERITY, Priority
from pulse.models import AppliedCommand, SlaCalendar, SlaPolicy, Ticket, TicketEvent, TimelineEvent


class SlaCalendarRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: int, calendar_id: int) -> SlaCalendar | None:
        if not is_storable_id(calendar_id):
            return None  # past bigint: no such row
        return await self.session.scalar(
            select(SlaCalendar).where(SlaCalendar.account_id == account_id, SlaCalendar.id == calendar_id)
        )

    async def list(self, account_id: int, *, page: int, page_size: int) -> tuple[Sequence[SlaCalendar], int]:
        statement = select(SlaCalendar).where(SlaCalendar.account_id == account_id)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        rows = await self.session.scalars(
            statement.order_by(SlaCalendar.id).limit(page_size).offset((page - 1) * page_size)
        )
        return list(rows), int(total or 0)

    async def add(self, calendar: SlaCalendar) -> SlaCalendar:
        self.session.add(calendar)
        await self.session.flush()
        return calendar

    async def delete(self, calendar: SlaCalendar) -> None:
        await self.session.delete(calendar)
        await self.session.flush()

    async def policies_using(self, calendar_id: int) -> list[int]:
        return list(await self.session.scalars(select(SlaPolicy.id).where(SlaPolicy.calendar_id == calendar_id)))


class SlaPolicyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure_defaults(self, account_id: int) -> None:
        """Seed the brief's per-priority policies for an account that lacks them (idempotent, safe
        under concurrency: one INSERT … ON CONFLICT DO NOTHING). One query."""
        rows = [
            {
                "account_id": account_id,
                "name": f"{priority.value.capitalize()} priority",
                "priority": priority.value,
                "first_response_minutes": first_response,
                "resolution_minutes": resolution,
                "at_risk_percent": DEFAULT_AT_RISK_PERCENT,
                "pause_statuses": [status.value for status in DEFAULT_PAUSE_STATUSES],
            }
            for priority, (first_response, resolution) in DEFAULT_TARGETS.items()
        ]
        await self.session.execute(
            insert(SlaPolicy)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["account_id", "priority"],
                                    index_where=SlaPolicy.conditions.is_(None))
        )

    async def all(self, account_id: int) -> list[SlaPolicy]:
        """Every policy of the account: priority policies by severity (urgent first), then the
        conditional ones by order. One query."""
        severity = case({p.value: rank for p, rank in PRIORITY_SEVERITY.items()}, value=SlaPolicy.priority, else_=0)
        rows = await self.session.scalars(
            select(SlaPolicy)
            .where(SlaPolicy.account_id == account_id)
            .order_by(SlaPolicy.conditions.is_not(None), severity.desc(), SlaPolicy.position, SlaPolicy.id)
        )
        return list(rows)

    async def get(self, account_id: int, policy_id: int) -> SlaPolicy | None:
        if not is_storable_id(policy_id):
            return None  # past bigint: no such row
        return await self.session.scalar(
            select(SlaPolicy).where(SlaPolicy.account_id == account_id, SlaPolicy.id == policy_id)
        )

    async def for_priority(self, account_id: int, priority: Priority) -> SlaPolicy | None:
        return await self.session.scalar(
            select(SlaPolicy).where(
                SlaPolicy.account_id == account_id,
                SlaPolicy.priority == priority.value,
                SlaPolicy.conditions.is_(None),
            )
        )

    async def calendars(self, account_id: int, calendar_ids: set[int]) -> dict[int, SlaCalendar]:
        if not calendar_ids:
            return {}
        rows = await self.session.scalars(
            select(SlaCalendar).where(SlaCalendar.account_id == account_id, SlaCalendar.id.in_(calendar_ids))
        )
        return {row.id: row for row in rows}

    async def add(self, policy: SlaPolicy) -> SlaPolicy:
        self.session.add(policy)
        await self.session.flush()
        return policy

    async def delete(self, policy: SlaPolicy) -> None:
        await self.session.delete(policy)
        await self.session.flush()


class TicketEventRepository:
    """The outbox of ticket events (``sla_at_risk``, ``sla_breached`` …)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, event: TicketEvent) -> None:
        self.session.add(event)

    async def for_ticket(self, ticket_id: int) -> list[TicketEvent]:
        rows = await self.session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return list(rows)


GROUPS = ("day", "week", "priority", "team")


class ComplianceRepository:
    """SLA compliance over tickets created in a range. Every query reads only the columns of
    ``ix_tickets_sla_compliance`` (account_id, created_at INCLUDE priority, team, met flags and
    times), so PostgreSQL answers with an index-only scan. Two queries (totals + breakdown)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _aggregates() -> list[Any]:
        def count_where(condition: Any) -> Any:
            return func.count().filter(condition)

        return [
            func.count().label("total"),
            count_where(Ticket.sla_first_response_met.is_(True)).label("first_response_met"),
            count_where(Ticket.sla_first_response_met.is_(False)).label("first_response_breached"),
            count_where(Ticket.sla_resolution_met.is_(True)).label("resolution_met"),
            count_where(Ticket.sla_resolution_met.is_(False)).label("resolution_breached"),
            func.avg(cast(Ticket.first_response_time, Float)).label("average_first_response_time"),
            func.avg(cast(Ticket.resolution_time, Float)).label("average_resolution_time"),
        ]

    def _where(self, account_id: int, start: datetime, end: datetime, priorities: list[Priority] | None,
               team_id: int | None) -> Any:
        conditions = [
            Ticket.account_id == account_id,
            Ticket.deleted_at.is_(None),
            Ticket.sla_policy_id.is_not(None),
            Ticket.created_at >= start,
            Ticket.created_at < end,
        ]
        if priorities:
            conditions.append(Ticket.priority.in_([p.value for p in priorities]))
        if team_id is not None:
            conditions.append(Ticket.assigned_to_team_id == team_id)
        return and_(*conditions)

    async def totals(self, account_id: int, start: datetime, end: datetime, *,
                     priorities: list[Priority] | None = None, team_id: int | None = None) -> dict[str, Any]:
        row = (await self.session.execute(
            select(*self._aggregates()).where(self._where(account_id, start, end, priorities, team_id))
        )).one()
        return dict(row._mapping)

    async def breakdown(self, account_id: int, start: datetime, end: datetime, group_by: str, *,
                        priorities: list[Priority] | None = None, team_id: int | None = None) -> list[dict[str, Any]]:
        if group_by in ("day", "week"):
            key = func.date_trunc(group_by, func.timezone("UTC", Ticket.created_at)).label("key")
            order: Any = key
        elif group_by == "priority":
            key = Ticket.priority.label("key")
            severity = case({p.value: rank for p, rank in PRIORITY_SEVERITY.items()}, value=Ticket.priority,
                            else_=0)
            order = func.max(severity).desc()
        else:
            key = Ticket.assigned_to_team_id.label("key")
            order = literal_column("key").asc().nulls_last()
        rows = await self.session.execute(
            select(key, *self._aggregates())
            .where(self._where(account_id, start, end, priorities, team_id))
            .group_by(literal_column("key"))
            .order_by(order)
        )
        return [dict(row._mapping) for row in rows]
