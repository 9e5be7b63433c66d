"""A write's outcome is read in every shape the ticket activities have stored or answered."""

from __future__ import annotations

from datetime import datetime, timezone

from pulse.domain import records
from pulse.domain.commands import TicketWrite

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def a_ticket() -> records.Ticket:
    return records.Ticket.model_validate({
        "id": 7, "account_id": 1, "number": 3, "subject": "Printer", "status": "open", "priority": "high",
        "version": 2, "created_at": NOW, "updated_at": NOW,
    })


def test_a_bare_ticket_from_before_the_one_transaction_write_is_read_as_a_write() -> None:
    stored = a_ticket().model_dump(mode="json", by_alias=True)
    assert TicketWrite.from_any(stored) == TicketWrite(ticket=a_ticket())


def test_a_comment_result_and_a_write_read_as_themselves() -> None:
    comment = records.Comment.model_validate({
        "id": 9, "ticket_id": 7, "body": "Hi", "is_internal": False, "notify_customer": False, "author_type": "agent",
        "created_at": NOW,
    })
    as_comment_result = records.CommentResult(comment=comment, ticket=a_ticket()).model_dump(mode="json", by_alias=True)
    assert TicketWrite.from_any(as_comment_result) == TicketWrite(ticket=a_ticket(), comment=comment)
    write = TicketWrite(ticket=a_ticket())
    assert TicketWrite.from_any(write.model_dump(mode="json")) == write
    assert TicketWrite.from_any(write) is write
