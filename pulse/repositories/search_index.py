"""The search index's queue and state (migration 0024), and the text it indexes.

Per search the API asks ``freshness`` (1 query): the index this database feeds, how many commits
the indexer has made, and which of the account's tickets wait to be indexed (the search checks
those in PostgreSQL). Per indexer
round: ``claim`` (1), ``documents`` (1), ``indexed`` (1 transaction: the generation and the
rows whose ``seq`` is still the one claimed).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from pulse.search_index.documents import TicketText


PENDING_CAP = 200  # more of an account's tickets waiting to be indexed: PostgreSQL answers its searches


@dataclass(frozen=True)
class IndexFreshness:
    index_id: str
    generation: int
    # The account's tickets changed since the index last took them (None: more than PENDING_CAP).
    pending_ids: list[int] | None


@dataclass(frozen=True)
class Queued:
    ticket_id: int
    seq: int


FRESHNESS = text(
    """
    SELECT s.index_id::text, s.generation,
           ARRAY(SELECT q.ticket_id FROM search_index_queue q WHERE q.account_id = :account_id LIMIT :cap)
      FROM search_index_state s
    """
)
IDENTITY = text("SELECT index_id::text, generation FROM search_index_state")
CLAIM = text("SELECT ticket_id, seq FROM search_index_queue LIMIT :limit")  # no order: an updated row moves to the end
ENQUEUE_ALL = text(
    """
    INSERT INTO search_index_queue (ticket_id, account_id, seq)
    SELECT id, account_id, nextval('search_index_queue_seq') FROM tickets WHERE deleted_at IS NULL
    ON CONFLICT (ticket_id) DO UPDATE SET seq = EXCLUDED.seq
    """
)
# What the index holds of each ticket, for ``WHERE`` to choose (bench/search_tantivy.py: all).
DOCUMENTS_SELECT = """
    SELECT t.id, t.account_id, (extract(epoch FROM t.created_at) * 1e6)::bigint,
           (extract(epoch FROM t.updated_at) * 1e6)::bigint, t.status, t.priority_rank,
           t.subject || E'\\n' || coalesce(t.description, '') || E'\\n' || coalesce(c.public, ''),
           coalesce(c.internal, '')
      FROM tickets t
      LEFT JOIN LATERAL (
           SELECT string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE NOT is_internal) AS public,
                  string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE is_internal) AS internal
             FROM ticket_comments WHERE ticket_id = t.id) c ON true
"""
DOCUMENTS = text(DOCUMENTS_SELECT + " WHERE t.id = ANY(:ids) AND t.deleted_at IS NULL")
GENERATION = text("UPDATE search_index_state SET generation = generation + 1")
DONE = text(
    """
    DELETE FROM search_index_queue q
     USING unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[])) AS done(ticket_id, seq)
     WHERE q.ticket_id = done.ticket_id AND q.seq = done.seq
    """
)
INDEXER_LOCK = 0x7075_6C73_6531  # pg_advisory_lock key: the database's one search indexer
LOCK_INDEXER = text("SELECT pg_try_advisory_lock(:key)")
UNLOCK_INDEXER = text("SELECT pg_advisory_unlock(:key)")
PENDING = text("SELECT count(*) FROM search_index_queue")


class SearchIndexQueue:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def freshness(self, account_id: int) -> IndexFreshness:
        index_id, generation, pending = (await self.session.execute(
            FRESHNESS, {"account_id": account_id, "cap": PENDING_CAP + 1})).one()
        return IndexFreshness(index_id, generation, list(pending) if len(pending) <= PENDING_CAP else None)

    async def identity(self) -> tuple[str, int]:
        index_id, generation = (await self.session.execute(IDENTITY)).one()
        return index_id, generation

    async def enqueue_all(self) -> None:
        """Every live ticket, to be (re)indexed: a new index starts from this."""
        await self.session.execute(ENQUEUE_ALL)

    async def claim(self, limit: int) -> list[Queued]:
        """Queued tickets, roughly the longest-waiting first (nothing is locked: ``indexed`` removes only those
        whose ``seq`` did not change meanwhile)."""
        return [Queued(ticket_id, seq) for ticket_id, seq in await self.session.execute(CLAIM, {"limit": limit})]

    async def documents(self, ticket_ids: list[int]) -> list[TicketText]:
        """The text of those of ``ticket_ids`` that are live tickets (the others leave the index)."""
        rows = await self.session.execute(DOCUMENTS.bindparams(bindparam("ids")), {"ids": ticket_ids})
        return [TicketText(*row) for row in rows]

    async def indexed(self, done: list[Queued]) -> None:
        """The indexer committed ``done``: one more generation, and their queue rows go unless
        their ticket changed again since they were claimed."""
        await self.session.execute(GENERATION)
        await self.session.execute(DONE, {"ids": [q.ticket_id for q in done], "seqs": [q.seq for q in done]})

    async def lock_indexer(self) -> bool:
        """The database's indexer lock, for as long as this session's connection holds it."""
        return bool((await self.session.execute(LOCK_INDEXER, {"key": INDEXER_LOCK})).scalar_one())

    async def unlock_indexer(self) -> None:
        await self.session.execute(UNLOCK_INDEXER, {"key": INDEXER_LOCK})

    async def pending(self) -> int:
        return int((await self.session.execute(PENDING)).scalar_one())
