"""The floors of Pulse's write path: raw Temporal plus the one database write each operation needs.

No Pulse code. One workflow (``FloorWorkflow``, on the bench's in-process no-op worker) whose
updates each run ONE local activity against PostgreSQL and then answer:

* ``create`` INSERTs one row into ``bench_floor`` — reached by update-with-start
  (``id_conflict_policy=USE_EXISTING``), the floor of ``POST /api/tickets``;
* ``edit`` UPDATEs the row this workflow inserted — reached by ``handle.execute_update`` on a
  long-lived workflow, the floor of ``PATCH /api/tickets/{id}``.

And the **skeleton**: what Pulse's architecture makes every write do, with nothing of Pulse's own
logic. An HTTP endpoint with a bearer token (``bench/floor_api.py``: FastAPI, pydantic body, no
database lookup for the token) sends the update; its local activity writes, in ONE statement, the
row, a timeline row, an outbox row and the command id that makes the write idempotent, and answers
the row, which the endpoint renders as JSON (``create_recorded`` by update-with-start,
``edit_recorded`` by update). Pulse's own code is what a Pulse write costs beyond the skeleton.

The activities share one SQLAlchemy async engine (psycopg 3, a steady pool of ``POOL_SIZE``
connections, no overflow and no pre-ping) in the bench process, so their CPU is counted under
``bench`` and their PostgreSQL backends under ``postgres``.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

POOL_SIZE = 10
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_floor (
    id bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    body text NOT NULL,
    version int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bench_floor_timeline (
    id bigserial PRIMARY KEY, row_id bigint NOT NULL, event_type text NOT NULL, to_value text,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_floor_outbox (
    id bigserial PRIMARY KEY, row_id bigint NOT NULL, event_type text NOT NULL, data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_floor_applied (command_id text PRIMARY KEY, row_id bigint NOT NULL)"""
INSERT = text("INSERT INTO bench_floor (workflow_id, body) VALUES (:workflow_id, :body) RETURNING id")
UPDATE = text("UPDATE bench_floor SET body = :body WHERE id = :id")
# The skeleton's write: the row, its timeline and outbox rows and the command id, one statement.
_RECORDED = """, timeline AS (INSERT INTO bench_floor_timeline (row_id, event_type, to_value)
                 SELECT id, :event, body FROM changed),
 outbox AS (INSERT INTO bench_floor_outbox (row_id, event_type, data)
            SELECT id, :event, jsonb_build_object('to', body) FROM changed),
 applied AS (INSERT INTO bench_floor_applied (command_id, row_id) SELECT :command_id, id FROM changed)
SELECT id, workflow_id, body, version, created_at FROM changed"""
INSERT_RECORDED = text("WITH changed AS (INSERT INTO bench_floor (workflow_id, body) VALUES (:workflow_id, :body) "
                       "RETURNING id, workflow_id, body, version, created_at)" + _RECORDED)
UPDATE_RECORDED = text("WITH changed AS (UPDATE bench_floor SET body = :body, version = version + 1 WHERE id = :id "
                       "RETURNING id, workflow_id, body, version, created_at)" + _RECORDED)
LOCAL_ACTIVITY_TIMEOUT = timedelta(seconds=5)


def make_floor_engine(database_url: str, pool_size: int = POOL_SIZE) -> AsyncEngine:
    """``database_url`` is a plain ``postgresql://`` URL."""
    _, _, rest = database_url.partition("://")
    return create_async_engine(f"postgresql+psycopg://{rest}", pool_size=pool_size, max_overflow=0)


async def create_table(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement in TABLE_DDL.split(";"):
            await connection.execute(text(statement))


async def warm_pool(engine: AsyncEngine, size: int = POOL_SIZE) -> None:
    """Open every pooled connection now, so that no measurement pays for a connect."""
    connections = [await engine.connect() for _ in range(size)]
    await asyncio.gather(*(connection.execute(text("SELECT 1")) for connection in connections))
    for connection in connections:
        await connection.close()


@asynccontextmanager
async def floor_pool(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The floors' engine with ``bench_floor`` created and every pooled connection open; disposed on exit."""
    engine = make_floor_engine(database_url)
    try:
        await create_table(engine)
        await warm_pool(engine)
        yield engine
    finally:
        await engine.dispose()


class FloorActivities:
    """The local activities; one instance per worker, holding the pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @activity.defn(name="bench_floor_insert")
    async def insert_row(self, workflow_id: str, body: str) -> int:
        async with self.engine.begin() as connection:
            return (await connection.execute(INSERT, {"workflow_id": workflow_id, "body": body})).scalar_one()

    @activity.defn(name="bench_floor_update")
    async def update_row(self, row_id: int, body: str) -> int:
        async with self.engine.begin() as connection:
            return (await connection.execute(UPDATE, {"id": row_id, "body": body})).rowcount

    @activity.defn(name="bench_floor_insert_recorded")
    async def insert_recorded(self, workflow_id: str, body: str, command_id: str) -> dict:
        async with self.engine.begin() as connection:
            row = (await connection.execute(INSERT_RECORDED, {"workflow_id": workflow_id, "body": body,
                                                              "event": "created", "command_id": command_id})).one()
        return {**row._mapping, "created_at": row.created_at.isoformat()}

    @activity.defn(name="bench_floor_update_recorded")
    async def update_recorded(self, row_id: int, body: str, command_id: str) -> dict:
        async with self.engine.begin() as connection:
            row = (await connection.execute(UPDATE_RECORDED, {"id": row_id, "body": body, "event": "field_changed",
                                                              "command_id": command_id})).one()
        return {**row._mapping, "created_at": row.created_at.isoformat()}

    def all(self) -> list:
        return [self.insert_row, self.update_row, self.insert_recorded, self.update_recorded]


@workflow.defn(sandboxed=False)
class FloorWorkflow:
    """Stays open until told to finish; ``create`` inserts its row, ``edit`` updates it — one local
    activity each, then the update answers."""

    def __init__(self) -> None:
        self.row_id: int | None = None
        self.version = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.version

    @workflow.update
    async def create(self, body: str) -> int:
        self.row_id = await workflow.execute_local_activity_method(
            FloorActivities.insert_row, args=[workflow.info().workflow_id, body],
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT)
        self.version += 1
        return self.row_id

    @workflow.update
    async def edit(self, body: str) -> int:
        if self.row_id is None:
            raise ApplicationError("no row yet: create first", non_retryable=True)
        await workflow.execute_local_activity_method(
            FloorActivities.update_row, args=[self.row_id, body], start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT)
        self.version += 1
        return self.version

    @workflow.update
    async def create_recorded(self, body: str) -> dict:
        """The skeleton's create: the row with its timeline, outbox and command rows; the row answered."""
        row = await workflow.execute_local_activity_method(
            FloorActivities.insert_recorded, args=[workflow.info().workflow_id, body, self._command_id()],
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT)
        self.row_id = row["id"]
        self.version = row["version"]
        return row

    @workflow.update
    async def edit_recorded(self, body: str) -> dict:
        """The skeleton's edit: the row changed with its timeline, outbox and command rows; the row answered."""
        if self.row_id is None:
            raise ApplicationError("no row yet: create first", non_retryable=True)
        row = await workflow.execute_local_activity_method(
            FloorActivities.update_recorded, args=[self.row_id, body, self._command_id()],
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT)
        self.version = row["version"]
        return row

    @staticmethod
    def _command_id() -> str:
        update = workflow.current_update_info()
        return f"{workflow.info().workflow_id}/{update.id if update else 'run'}"

    @workflow.signal
    def finish(self) -> None:
        self.done = True
