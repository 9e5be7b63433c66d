"""The search index's one writer.

Runs in each API process; the process that holds ``<index>.lock`` (tantivy allows one writer
per index; an flock goes with its process, kill -9 included) indexes, the others try again every
``LOCK_RETRY_S``. A round: the longest-waiting queued tickets (``search_index_queue``, written in
each change's transaction), their current text from PostgreSQL, their documents replaced, a
commit, then the generation counted and their queue rows removed (unless they changed again
meanwhile). A ticket is indexed at least once after each change and its document is rebuilt from
the committed row, so a round repeated after a crash changes nothing. When the directory holds
no index for this database (first start, another database, a new schema), a new one is created
and every live ticket is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

import tantivy

from pulse.db import SessionFactory, reading
from pulse.repositories.search_index import PENDING_CAP, Queued, SearchIndexQueue
from pulse.search_index.documents import (
    analyzer,
    create_index,
    is_current,
    make_document,
    mark_current,
    open_index,
    schema,
)

log = logging.getLogger("pulse.search_index")
ROUND_IDLE_S = 0.05  # an empty queue is asked again this often
# A round that found a little work starts the next one no sooner than this: under a steady stream
# of writes a commit (a new segment, its files synced, every reader reloading) takes what came
# meanwhile instead of one or two tickets. Searches stay exact meanwhile (queued tickets are
# checked in PostgreSQL); a write is in the index within about this long plus a round.
ROUND_EVERY_S = 0.25
# A round that took at least this many tickets is followed at once: at such rates commits are
# large anyway, and waiting would let an account's queue pass PENDING_CAP, past which PostgreSQL
# answers the account's whole searches instead of checking the queued tickets.
BUSY_ROUND = PENDING_CAP // 2
BATCH = 2_000  # tickets per round (and per commit)
BACKLOG_BATCH = 25_000  # after a full round: fewer, larger segments while a new index fills
LOCK_RETRY_S = 5.0
WRITER_HEAP = 100_000_000


class SearchIndexer:
    def __init__(self, sessions: SessionFactory, path: Path) -> None:
        self.sessions = sessions
        self.path = path
        self.stemmer = analyzer()
        self.rounds = 0
        self._lock: int | None = None
        self.schema = schema()

    async def run(self) -> None:
        """Index until cancelled. Only one process indexes a database's tickets: the one holding
        both this directory's ``<index>.lock`` and the database's advisory lock (an indexer on
        another machine would take part of the queue, and each index would miss what the other
        took); the others try again every ``LOCK_RETRY_S``. A failed round is logged and the
        locks taken again."""
        while True:
            try:
                if self._lock is None:
                    self._lock = self._take_lock()
                if self._lock is not None:
                    async with reading(self.sessions) as holder:
                        queue = SearchIndexQueue(holder)
                        if await queue.lock_indexer():
                            try:
                                await self._index(await self._open_writer())
                            finally:
                                with contextlib.suppress(Exception):
                                    await queue.unlock_indexer()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database or the disk: taken again after a pause
                log.exception("search indexing stopped; trying again")
            await asyncio.sleep(LOCK_RETRY_S)

    async def _index(self, writer: tantivy.IndexWriter) -> None:
        batch = BATCH
        while True:
            started = time.monotonic()
            taken = await self.round(writer, batch)
            if taken >= batch:  # a backlog: the next round at once, larger
                batch = BACKLOG_BATCH
                continue
            batch = BATCH
            if taken >= BUSY_ROUND:
                continue
            await asyncio.sleep(max(ROUND_IDLE_S, ROUND_EVERY_S - (time.monotonic() - started)) if taken
                                else ROUND_IDLE_S)

    def _take_lock(self) -> int | None:
        """This process's claim to be the index's writer (``<index>.lock``, flock'd while the
        process lives), or None while another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    async def _open_writer(self) -> tantivy.IndexWriter:
        async with self.sessions() as session, session.begin():
            index_id, _ = await SearchIndexQueue(session).identity()
        if is_current(self.path, index_id):
            index = open_index(self.path)
            self.schema = index.schema
            return index.writer(heap_size=WRITER_HEAP, num_threads=1)
        index = create_index(self.path)  # its identity is written once every ticket is queued
        self.schema = index.schema
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        async with self.sessions() as session, session.begin():
            await SearchIndexQueue(session).enqueue_all()
        mark_current(self.path, index_id)
        log.info("search index created at %s; every ticket queued", self.path)
        return writer

    async def round(self, writer: tantivy.IndexWriter, batch: int = BATCH) -> int:
        """One batch indexed and committed; how many tickets it held (0: the queue was empty)."""
        async with self.sessions() as session:
            queue = SearchIndexQueue(session)
            claimed = await queue.claim(batch)
            if not claimed:
                return 0
            texts = await queue.documents([q.ticket_id for q in claimed])
        documents = [make_document(text, self.stemmer) for text in texts]
        await asyncio.to_thread(self._write, writer, self.schema, claimed, documents)
        async with self.sessions() as session, session.begin():
            await SearchIndexQueue(session).indexed(claimed)
        self.rounds += 1
        return len(claimed)

    @staticmethod
    def _write(writer: tantivy.IndexWriter, schema: tantivy.Schema, claimed: list[Queued],
               documents: list[tantivy.Document]) -> None:
        # (by a query: delete_documents_by_term takes a Python int for a signed term and deletes nothing)
        writer.delete_documents_by_query(tantivy.Query.term_set_query(
            schema, "ticket_id", [queued.ticket_id for queued in claimed]))
        for document in documents:
            writer.add_document(document)
        writer.commit()
