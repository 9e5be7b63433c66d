"""What an outbox event carries for the notification consumers (``pulse.notifications.delivery``):
``data["notify"]``, one delivery per channel."""

from __future__ import annotations


def notify_payload(*, kind: str, reason: str, channels: list[str], subject: str, text: str,
                   user_ids: list[int] | None = None, team_id: int | None = None,
                   emails: list[str] | None = None) -> dict[str, object]:
    """What an event carries for the notification consumers (``pulse.notifications.delivery``)."""
    return {"kind": kind, "reason": reason, "channels": channels, "userIds": user_ids or [], "teamId": team_id,
            "emails": emails or [], "subject": subject, "text": text}
