"""Engine and session factory. The request or the activity owns the transaction."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from pulse.config import async_database_url

SessionFactory = async_sessionmaker[AsyncSession]


# A database that is down or unreachable is noticed within seconds (then the request is a 503):
# connecting gives up after CONNECT_TIMEOUT_SECONDS, waiting for a pooled connection after
# POOL_TIMEOUT_SECONDS; a connection that died while pooled is replaced (pre-ping), so the first
# request after an outage succeeds.
CONNECT_TIMEOUT_SECONDS = 3
POOL_TIMEOUT_SECONDS = 5


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_database_url(database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def make_sessionmaker(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def reading(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session for reads alone, without a transaction: each statement runs on its own snapshot,
    as it does in a READ COMMITTED transaction (PostgreSQL's default), but with no ``BEGIN`` sent
    before the first statement and no ``ROLLBACK`` when the session closes: two round trips fewer
    (psycopg sends ``BEGIN`` on its own). The connection is back to transactions when it returns
    to the pool. Nothing written through it is kept transactional: reads only."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
