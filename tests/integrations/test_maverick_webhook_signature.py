"""Maverick's webhook signature: what is accepted and what is refused (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pulse.integrations.maverick import BadEvent, BadSignature, parse_event, sign, verify

SECRET = "whsec_test_0123456789"
BODY = b'{"id":"evt_1","type":"ticket.updated","occurredAt":"2026-12-01T00:00:00Z","data":{"ticketId":"tkt_9"}}'
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())


def test_a_body_signed_with_the_secret_just_now_is_accepted() -> None:
    verify(SECRET, sign(SECRET, BODY, T), BODY, NOW)
    verify(SECRET, sign(SECRET, BODY, T - 299), BODY, NOW)


@pytest.mark.parametrize("header, why", [
    (None, "missing"),
    ("", "missing"),
    ("v1=abc", "needs t="),
    (f"t={T}", "needs t="),
    (f"t=soon,v1=abc", "not a number"),
    (sign("another-secret", BODY, T), "does not match"),
    (sign(SECRET, BODY + b" ", T), "does not match"),
    (sign(SECRET, BODY, T - 301), "minutes"),
    (sign(SECRET, BODY, T + 301), "minutes"),
])
def test_missing_forged_altered_or_stale_signatures_are_refused(header: str | None, why: str) -> None:
    with pytest.raises(BadSignature, match=why):
        verify(SECRET, header, BODY, NOW)


def test_one_matching_signature_among_several_is_enough_while_a_secret_rotates() -> None:
    good = sign(SECRET, BODY, T).split(",")[1]
    verify(SECRET, f"t={T},v1={'0' * 64},{good}", BODY, NOW)


def test_an_event_says_which_ticket_it_is_about() -> None:
    event = parse_event(BODY)
    assert (event.id, event.type, event.ticket_id()) == ("evt_1", "ticket.updated", "tkt_9")
    assert event.occurred_at == NOW - timedelta(hours=12)
    with pytest.raises(BadEvent):
        parse_event(b'{"type": "ticket.updated"}')
    with pytest.raises(BadEvent):
        parse_event(b"not json")
