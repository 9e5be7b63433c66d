"""The support-lead numbers of ``/metrics`` (open tickets by SLA status, failing deliveries)."""

from __future__ import annotations

from dataclasses import dataclass

from pulse.db import SessionFactory
from pulse.repositories.operations import OperationsRepository


@dataclass(frozen=True)
class SupportLeadNumbers:
    open_tickets: list[tuple[int, str, int]]
    failing_deliveries: list[tuple[int, str, bool, int]]


async def support_lead_numbers(sessions: SessionFactory) -> SupportLeadNumbers:
    """Both counts in one short read-only transaction."""
    async with sessions() as session, session.begin():
        repository = OperationsRepository(session)
        return SupportLeadNumbers(open_tickets=await repository.open_tickets_by_sla_status(),
                                  failing_deliveries=await repository.failing_deliveries())
