"""Custom search attributes of ticket workflows (registered with the Temporal server)."""

from temporalio.common import SearchAttributeKey

TICKET_NUMBER = SearchAttributeKey.for_keyword("TicketNumber")
TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
TICKET_TEAM = SearchAttributeKey.for_keyword("TicketTeam")
SLA_STATUS = SearchAttributeKey.for_keyword("SlaStatus")

ALL = (TICKET_NUMBER, TICKET_STATUS, TICKET_PRIORITY, TICKET_TEAM, SLA_STATUS)
