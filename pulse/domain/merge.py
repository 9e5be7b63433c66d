"""Ticket merge vocabulary shared by the workflow and the API. Pure."""

from __future__ import annotations

from pulse.domain.tickets import format_ticket_number


def merge_note(secondaries: list[tuple[int, str]]) -> str:
    """The internal note left on the primary ticket: which tickets (number, subject) were merged."""
    listed = ", ".join(f"{format_ticket_number(number)} ({subject})" for number, subject in secondaries)
    noun = "ticket" if len(secondaries) == 1 else "tickets"
    return f"Merged {noun} {listed} into this ticket; their comments are copied here in time order."
