"""The range of the numbers Pulse stores. Ids are PostgreSQL ``bigint``; ticket numbers, counters
and versions are ``integer``. A number outside these bounds names nothing that can exist, so the
API rejects it (422) or answers 404 before it reaches the database, where it would be an error."""

from __future__ import annotations

MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1


def is_storable_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def is_storable_int(value: int) -> bool:
    return -MAX_INT - 1 <= value <= MAX_INT


def parse_id(text: str) -> int | None:
    """A path id as PostgreSQL can store it: ASCII digits only (``isdigit`` also takes ``¹``),
    within bigint; None otherwise (the caller answers 404)."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if is_storable_id(value) else None
