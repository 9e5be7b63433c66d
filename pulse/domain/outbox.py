"""The outbox's consumers: which consumers each event goes to.

Every event a write raises is an outbox row written in the write's transaction. After the commit
the ticket's workflow hands each event to the consumers listed here, one regular activity per
(event, consumer) with retries and backoff; a consumer is idempotent by event id, so at-least-once
delivery has the effect of exactly once. A new consumer is a name here and a method in
``pulse.activities.outbox``.
"""

from __future__ import annotations

from pulse.domain import records
from pulse.domain.changes import TicketEvent

IN_APP_MENTIONS = "in_app_mentions"
NOTIFY_PREFIX = "notify:"
MAVERICK_PUSH = "maverick_push"
MAVERICK_PUSHED_EVENTS = frozenset({"status_changed", "comment_added", "attachment_added"})


def consumers_for(event: TicketEvent, ticket: records.Ticket | None = None) -> list[str]:
    """``in_app_mentions`` for a comment that mentions users; ``notify:<channel>`` for each channel
    of an event that carries a ``notify`` payload (escalations, a reply to the customer,
    assignments): one delivery per channel, so a dead channel holds back no other.
    ``maverick_push`` for a status change, comment or attachment of a Maverick ticket that did not
    come from Maverick (changes Maverick made are never pushed back to it); whether the account's
    integration pushes is the consumer's to check."""
    consumers = []
    if (ticket is not None and ticket.external_source == "maverick" and event.actor.kind != "maverick"
            and event.type in MAVERICK_PUSHED_EVENTS):
        consumers.append(MAVERICK_PUSH)
    if event.type == "comment_added" and event.data.get("mentions"):
        consumers.append(IN_APP_MENTIONS)
    notify = event.data.get("notify")
    if isinstance(notify, dict):
        consumers += [f"{NOTIFY_PREFIX}{channel}" for channel in dict.fromkeys(notify.get("channels") or [])]
    return consumers
