"""SQLAlchemy ORM tables (no behaviour). Queries live in ``pulse.repositories``."""

from pulse.models.audit import AuditEntry
from pulse.models.automation import AutomationExecution, AutomationRule, AutomationSkips
from pulse.models.base import Base
from pulse.models.escalations import EscalationRule, TicketEscalation
from pulse.models.engine import AgendaProbe, Notification, OutboxDelivery, TicketSlaClock
from pulse.models.notifications import NotificationDelivery, NotificationSettings
from pulse.models.rotations import Rotation, RotationMember
from pulse.models.sla import SlaCalendar, SlaPolicy, TicketEvent
from pulse.models.ticket_ops import BulkOperation, BulkOperationItem, SavedView
from pulse.models.tables import (
    Account,
    AccountMember,
    ApiToken,
    AppliedCommand,
    IdempotencyKey,
    Team,
    TeamMember,
    Ticket,
    TicketCategory,
    TicketComment,
    TicketType,
    TimelineEvent,
    User,
)

__all__ = [
    "AuditEntry",
    "AutomationExecution",
    "AutomationRule",
    "AutomationSkips",
    "EscalationRule",
    "TicketEscalation",
    "AgendaProbe",
    "Notification",
    "NotificationDelivery",
    "NotificationSettings",
    "OutboxDelivery",
    "TicketSlaClock",
    "Account",
    "AccountMember",
    "ApiToken",
    "AppliedCommand",
    "Base",
    "BulkOperation",
    "BulkOperationItem",
    "IdempotencyKey",
    "Rotation",
    "RotationMember",
    "SavedView",
    "SlaCalendar",
    "SlaPolicy",
    "Team",
    "TeamMember",
    "Ticket",
    "TicketCategory",
    "TicketComment",
    "TicketEvent",
    "TicketType",
    "TimelineEvent",
    "User",
]
