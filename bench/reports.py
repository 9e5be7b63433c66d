"""Reports at a million tickets (issue 14): a 90-day ticket-volume report by day and the summary,
p50/p95/p99, while a writer changes tickets.

Data: ``bench/search.py``'s million tickets (its generator and database, ``--embedded DIR`` for
its PostgreSQL 18 with shared_buffers 4 GB). Generated tickets have no timeline, so the first
run gives each one the timeline its row implies (created open; resolved at ``resolved_at``;
closed at ``closed_at``), sets ``status_changed_at`` and builds the rollups from the timelines and
the tickets (``ReportRollup.rebuild``'s statements), once.

Measured, interleaved, through the repository/service code:
- **rollup**: ``ReportService.tickets`` (unfiltered, 90 days by day, UTC and Europe/Paris): the
  rollups kept in each write's transaction — UTC days for the backlog before the range (and for the
  whole range when it is cut on UTC days), 15-minute slots for Paris's days;
- **plain aggregate**: the same figures from the tickets and their timelines
  (``ReportQueries.from_history``, what filtered reports use), unfiltered and by team / priority;
- **summary**: ``ReportService.summary`` over the same 90 days, from its rollup by UTC creation
  day (UTC), plus the tickets of the hours around the whole UTC days (Europe/Paris).
While a writer process changes tickets through ``TicketEngine`` (creates, resolves, reopens and
closes, one transaction each, rollup included) at ``--write-rate`` per second.

    .venv/bin/python bench/search.py --embedded /work/bench/pg --generate-only   # data, once (~10 min)
    .venv/bin/python bench/reports.py --embedded /work/bench/pg [--queries 60] [--write-rate 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import bindparam, text  # noqa: E402
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP  # noqa: E402

from bench import search  # noqa: E402
from bench.search import Series, database_url, load, log, start_embedded  # noqa: E402

DAYS = 90
ROLLUPS = ("ticket_report_slots", "ticket_report_days", "ticket_summary_days")


def prepare(plain: bool) -> None:
    """Migrate; give the generated tickets their timelines and build the rollups (once); with
    ``plain``, also the ``status_changed_at`` the plain aggregate reads."""
    from pulse.devstack import migrate

    migrate(database_url())
    with psycopg.connect(database_url(), autocommit=True) as db:
        db.execute("CREATE TABLE IF NOT EXISTS bench_reports_setup (done_at timestamptz)")
        if db.execute("SELECT count(*) FROM bench_reports_setup").fetchone()[0] and (
                not plain or not db.execute("SELECT 1 FROM tickets WHERE status_changed_at IS NULL LIMIT 1").fetchone()):
            return
        account_id = db.execute("SELECT id FROM accounts WHERE name = 'Bench'").fetchone()[0]
        started = time.monotonic()
        log("giving the generated tickets their timelines (created, resolved, closed) …")
        db.execute("SET maintenance_work_mem = '1GB'")
        db.execute("""
            INSERT INTO ticket_timeline (account_id, ticket_id, event_type, actor, field, from_value, to_value, data,
                                         created_at)
            SELECT account_id, id, 'ticket_created', 'user', NULL, 'null'::jsonb, 'null'::jsonb, '{"status": "open"}'::jsonb,
                   created_at
              FROM tickets t WHERE account_id = %(a)s
               AND NOT EXISTS (SELECT 1 FROM ticket_timeline e WHERE e.ticket_id = t.id)
            UNION ALL
            SELECT account_id, id, 'status_changed', 'user', 'status', '"open"'::jsonb, '"resolved"'::jsonb, '{}'::jsonb,
                   resolved_at
              FROM tickets t WHERE account_id = %(a)s AND resolved_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM ticket_timeline e WHERE e.ticket_id = t.id)
            UNION ALL
            SELECT account_id, id, 'status_changed', 'user', 'status', '"resolved"'::jsonb, '"closed"'::jsonb, '{}'::jsonb,
                   closed_at
              FROM tickets t WHERE account_id = %(a)s AND closed_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM ticket_timeline e WHERE e.ticket_id = t.id)
            ORDER BY 9""", {"a": account_id})
        if plain:  # what the plain aggregate reads; an UPDATE of every row and index (the longest step)
            db.execute("UPDATE tickets SET status_changed_at = coalesce(closed_at, resolved_at, created_at) "
                       "WHERE account_id = %s AND status_changed_at IS NULL", (account_id,))
        log(f"timelines written ({time.monotonic() - started:.0f} s); building the rollups …")
        from pulse.repositories.reports import REBUILD_DAYS_SQL, REBUILD_SQL, REBUILD_SUMMARY_SQL

        with db.transaction():
            for table in ROLLUPS:
                db.execute(f"DELETE FROM {table} WHERE account_id = %s", (account_id,))
            for statement in (REBUILD_SQL, REBUILD_DAYS_SQL, REBUILD_SUMMARY_SQL):
                db.execute(statement.replace(":account_id", "%(a)s"), {"a": account_id})
        for table in ("tickets", "ticket_timeline", *ROLLUPS):
            db.execute(f"VACUUM (ANALYZE) {table}")
        db.execute("INSERT INTO bench_reports_setup VALUES (now())")
        slots = db.execute("SELECT count(*) FROM ticket_report_slots WHERE account_id = %s", (account_id,)).fetchone()[0]
        log(f"prepared in {time.monotonic() - started:.0f} s; {slots:,} rollup slots")


def prewarm() -> None:
    with psycopg.connect(database_url(), autocommit=True) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        db.execute("SELECT pg_prewarm(c.oid, 'buffer') FROM pg_class c WHERE c.relkind IN ('r', 'i') AND c.oid IN ("
                   "SELECT unnest(%(tables)s::regclass[]) UNION SELECT indexrelid FROM pg_index "
                   "WHERE indrelid = ANY(%(tables)s::regclass[]))",
                   {"tables": ["tickets", "ticket_timeline", *ROLLUPS]})


# -- the writer (a separate process, so its CPU is not the measuring loop's) ---------------------------

async def write_loop(seconds: float, rate: float) -> None:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.domain.changes import Actor, NewTicket, TicketChanges
    from pulse.domain.commands import CreateCommand, CreateTicketInput, UpdateCommand, UpdateTicketInput
    from pulse.domain.errors import DomainError
    from pulse.domain.tickets import TicketStatus
    from pulse.repositories.tickets import TicketRepository
    from pulse.services.ticket_engine import TicketEngine

    engine = make_engine(database_url(), pool_size=2)
    sessions = make_sessionmaker(engine)
    rng = random.Random(5)
    async with sessions() as session:
        account_id = (await session.execute(text("SELECT id FROM accounts WHERE name = 'Bench'"))).scalar_one()
        recent = list((await session.execute(text(
            "SELECT id FROM tickets WHERE account_id = :a AND deleted_at IS NULL AND status <> 'closed' "
            "ORDER BY id DESC LIMIT 2000"), {"a": account_id})).scalars())
    actor = Actor(kind="user")
    writes = failures = 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < seconds:
        next_at += 1 / rate
        now = datetime.now(timezone.utc)
        ids = {"command_id": f"bench-{uuid.uuid4()}", "account_id": account_id, "now": now}
        try:
            async with sessions() as session, session.begin():
                engine_ = TicketEngine(session)
                if rng.random() < 0.4 or not recent:
                    ticket_id, number = await TicketRepository(session).allocate(account_id)
                    await engine_.create(CreateCommand(**ids, ticket_id=ticket_id, input=CreateTicketInput(
                        account_id=account_id, ticket_id=ticket_id, number=number, actor=actor,
                        ticket=NewTicket(subject="bench write", priority=rng.choice(["low", "medium", "high"])))))
                    recent.append(ticket_id)
                else:
                    ticket_id = rng.choice(recent)
                    status = rng.choice([TicketStatus.RESOLVED, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED,
                                         TicketStatus.CLOSED, TicketStatus.OPEN])
                    outcome = await engine_.update(UpdateCommand(**ids, ticket_id=ticket_id, input=UpdateTicketInput(
                        actor=actor, changes=TicketChanges(status=status))))
                    if outcome.ticket and outcome.ticket.status == TicketStatus.CLOSED:
                        recent.remove(ticket_id)
            writes += 1
        except DomainError:
            failures += 1  # an invalid transition (e.g. open → in_progress → open is fine, closed → …)
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    elapsed = time.monotonic() - started
    print(f"WRITER {writes} {failures} {elapsed:.1f}", flush=True)
    await engine.dispose()


# -- the queries -------------------------------------------------------------------------------------

SLOTS_ONLY = text(
    "SELECT width_bucket(slot, :starts) AS bucket, sum(created), sum(resolved), sum(reopened), sum(closed),"
    " sum(backlog_change) FROM ticket_report_slots WHERE account_id = :a AND slot < :until GROUP BY 1"
).bindparams(bindparam("starts", type_=ARRAY(TIMESTAMP(timezone=True))))

async def measure(queries: int, plain_too: bool) -> list[Series]:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.domain.reports import zone_named
    from pulse.repositories.reports import ReportQueries
    from pulse.services.reports import ReportService

    engine = make_engine(database_url(), pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        account_id = (await session.execute(text("SELECT id FROM accounts WHERE name = 'Bench'"))).scalar_one()
        team_ids = list((await session.execute(text("SELECT id FROM teams WHERE account_id = :a"),
                                               {"a": account_id})).scalars())
    rng = random.Random(3)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

    def window() -> tuple[datetime, datetime]:
        end = today + timedelta(days=1) - timedelta(days=rng.randrange(0, 30))  # the last 90 days, up to a month ago
        return end - timedelta(days=DAYS), end

    async def rollup(zone: str) -> Any:
        since, until = window()
        if zone != "UTC":  # local midnights
            since, until = since - timedelta(hours=1), until - timedelta(hours=1)
        async with sessions() as session:
            return await ReportService(session).tickets(account_id, since, until, group_by="day",
                                                        zone=zone_named(zone), filters={})

    async def plain(filters: dict[str, Any]) -> Any:
        since, until = window()
        bounds = [since + timedelta(days=i) for i in range(DAYS + 1)]
        async with sessions() as session:
            return await ReportQueries(session).from_history(account_id, bounds, filters)

    async def summary(zone: str) -> Any:
        since, until = window()
        if zone != "UTC":  # local midnights: the hours around the UTC days are read from the tickets
            since, until = since - timedelta(hours=1), until - timedelta(hours=1)
        async with sessions() as session:
            return await ReportService(session).summary(account_id, since, until, zone_named(zone))

    async def slots_only() -> Any:  # the rollup as it was before the day rows: every slot before the range
        since, _ = window()
        starts = [since + timedelta(days=i) for i in range(DAYS)]
        async with sessions() as session:
            return (await session.execute(SLOTS_ONLY, {"a": account_id, "starts": starts,
                                                       "until": since + timedelta(days=DAYS)})).all()

    async def summary_scan() -> Any:  # the summary as it was before its rollup: the tickets of the range
        since, until = window()
        async with sessions() as session:
            return await ReportQueries(session)._summary_scan(account_id, [(since, until)])

    kinds: list[tuple[Series, Callable[[], Awaitable[Any]]]] = [
        (Series("by day, 90 days — slots only, no day rows (before 0021)", None), slots_only),
        (Series("summary, 90 days — scan of the tickets (before 0021)", None), summary_scan),
        (Series("by day, 90 days — rollup (UTC)", 50), lambda: rollup("UTC")),
        (Series("by day, 90 days — rollup (Europe/Paris)", 50), lambda: rollup("Europe/Paris")),
        (Series("by day, 90 days — plain aggregate (tickets + timeline)", 50), lambda: plain({})),
        (Series("summary, 90 days (UTC)", 50), lambda: summary("UTC")),
        (Series("summary, 90 days (Europe/Paris)", 50), lambda: summary("Europe/Paris")),
        (Series("by day, 90 days, one team — plain aggregate", None),
         lambda: plain({"team_id": rng.choice(team_ids)})),
        (Series("by day, 90 days, priority=urgent — plain aggregate", None), lambda: plain({"priorities": ["urgent"]})),
    ]
    if not plain_too:
        kinds = [kind for kind in kinds if "plain aggregate" not in kind[0].label]
    plan = [kind for kind in kinds for _ in range(queries)]
    rng.shuffle(plan)
    for series, run in kinds:  # warm each kind's plan and connections
        await run()
    for series, run in plan:
        start = time.perf_counter()
        await run()
        series.samples.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.02)
    await engine.dispose()
    return [series for series, _ in kinds]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedded", type=Path, metavar="DIR")
    parser.add_argument("--queries", type=int, default=60, help="queries per kind")
    parser.add_argument("--write-rate", type=float, default=25, help="ticket writes per second meanwhile (0: none)")
    parser.add_argument("--plain", action="store_true",
                        help="also measure the plain aggregate over tickets + timelines (filtered reports' way); "
                             "its preparation UPDATEs every generated ticket once (tens of minutes)")
    parser.add_argument("--writer-url", help=argparse.SUPPRESS)  # the writer subprocess
    parser.add_argument("--writer-seconds", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer_url:
        search.EMBEDDED_URL.append(args.writer_url)
        await write_loop(args.writer_seconds, args.write_rate)
        return 0
    server = start_embedded(args.embedded) if args.embedded else None
    try:
        print(f"machine: {os.cpu_count()} CPUs, load {load()}")
        prepare(args.plain)
        prewarm()
        with psycopg.connect(database_url()) as db:
            tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
            timeline = db.execute("SELECT count(*) FROM ticket_timeline").fetchone()[0]
        writer = None
        if args.write_rate:
            writer = subprocess.Popen(
                [sys.executable, __file__, "--writer-url", search.server_url(), "--writer-seconds", "100000",
                 "--write-rate", str(args.write_rate)], stdout=subprocess.PIPE, text=True)
            await asyncio.sleep(3)
        started = time.monotonic()
        try:
            series = await measure(args.queries, args.plain)
        finally:
            if writer is not None:
                writer.terminate()
        elapsed = time.monotonic() - started
        with psycopg.connect(database_url()) as db:
            after = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
        print(f"\nload after the run: {load()}; {tickets:,} tickets ({after - tickets:,} created during "
              f"{elapsed:.0f} s of queries), {timeline:,} timeline rows; writer at {args.write_rate:g}/s")
        print("| report (1,000,000 tickets) | n | p50 ms | p95 ms | p99 ms | goal p95 |\n|---|---:|---:|---:|---:|---:|")
        for s in series:
            goal = f"≤ {s.goal_ms:.0f} ms {'✓' if s.pct(95) <= s.goal_ms else '✗'}" if s.goal_ms else ""
            print(f"| {s.label} | {len(s.samples)} | {s.pct(50):.1f} | {s.pct(95):.1f} | {s.pct(99):.1f} | {goal} |")
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
