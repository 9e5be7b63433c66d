"""Pure ticket rules: the lifecycle table, tags, ticket numbers, list parameters."""

from __future__ import annotations

import pytest

from pulse.domain.errors import InvalidTransition, ValidationFailed
from pulse.domain.ticket_query import parse_ticket_query
from pulse.domain.tickets import (
    ALLOWED_TRANSITIONS,
    TicketStatus,
    check_transition,
    normalise_tags,
    parse_ticket_number,
    status_after_customer_comment,
)

S = TicketStatus
SPEC_TABLE = {
    S.OPEN: {S.IN_PROGRESS, S.WAITING_CUSTOMER, S.RESOLVED, S.CLOSED},
    S.IN_PROGRESS: {S.OPEN, S.WAITING_CUSTOMER, S.RESOLVED, S.CLOSED},
    S.WAITING_CUSTOMER: {S.IN_PROGRESS, S.RESOLVED, S.CLOSED},
    S.RESOLVED: {S.IN_PROGRESS, S.CLOSED},
    S.CLOSED: set(),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_transitions_follow_the_spec_lifecycle_table(current: S, target: S) -> None:
    if target == current or target in SPEC_TABLE[current]:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition) as error:
            check_transition(current, target)
        assert error.value.status == 409
        for allowed in ALLOWED_TRANSITIONS[current]:
            assert allowed.value in error.value.message


def test_customer_replies_resume_waiting_and_reopen_resolved_tickets() -> None:
    assert status_after_customer_comment(S.WAITING_CUSTOMER) == S.IN_PROGRESS
    assert status_after_customer_comment(S.RESOLVED) == S.IN_PROGRESS
    assert status_after_customer_comment(S.OPEN) is None


def test_tags_are_lower_cased_trimmed_and_unique_in_first_seen_order() -> None:
    assert normalise_tags(["Bug", " bug ", "API", "", "api", "ui"]) == ["bug", "api", "ui"]


def test_ticket_numbers_parse_case_insensitively() -> None:
    assert parse_ticket_number("PULSE-42") == 42
    assert parse_ticket_number("pulse-7") == 7
    assert parse_ticket_number("42") is None


def test_list_parameters_parse_any_of_ranges_tags_and_custom_fields() -> None:
    query = parse_ticket_query({
        "priority": "urgent,high", "tags": "Bug,api", "createdAfter": "2026-01-01T00:00:00Z",
        "customFields.plan": "gold", "sort": "priority,-createdAt", "page": "2", "pageSize": "10",
    })
    assert query.equals[0].values == ["urgent", "high"]
    assert query.tags_all == ["bug", "api"]
    assert query.ranges[0].after is not None and query.custom_fields == {"plan": "gold"}
    assert [(k.field, k.descending) for k in query.sort] == [("priority", True), ("createdAt", True)]
    assert query.offset == 10


def test_unknown_filters_and_sort_fields_list_the_valid_ones() -> None:
    with pytest.raises(ValidationFailed) as error:
        parse_ticket_query({"colour": "red", "sortBy": "mood", "priority": "whenever"})
    fields = {detail["field"] for detail in error.value.details}
    assert fields == {"colour", "sortBy", "priority"}
    messages = " ".join(detail["message"] for detail in error.value.details)
    assert "assignedToTeamId" in messages and "createdAt" in messages
