"""Search as agents type it, through the HTTP API (issue 15): ``bench/search.py --http``.

On ``bench/search.py``'s million tickets (its database, ``--embedded DIR`` for its PostgreSQL 18):

- a real ``pulse api`` process on the bench database (no Temporal: reads do not need it; rate
  limits off, as for a trusted internal client), with two tokens of the bench account: an agent's
  (readSupport + writeSupport: internal notes searched) and a reader's (readSupport only); half the
  requests use each;
- the words an agent types after reading a ticket: a ticket is drawn at random, then words at
  random positions of its subject, description and public comments, so a word is drawn in
  proportion to how often it occurs (not chosen to be rare or common). Kinds: one, two and three
  words; a word and the start of another (3 characters up to all but the last); a word with
  status/priority filters (and a sort, half the time); filtered lists and sorts (page 1); deep
  pages (page 20–200 of lists). Seeded (``--seed``): the one-client run uses the seed, the
  four-client run the seed + 1;
- 1 client, then 4 clients at once (separate processes, so a client's CPU is not another's),
  after a warm-up of 4 clients × ``WARM_UP`` requests drawn from seed + 2;
- the floor of "4 clients ÷ 1 client" in the same run (``replay_floor``): the one-client run
  replayed with each request replaced by pure PostgreSQL CPU of the same duration, by 1 client
  and by 4: what two cores allow for this workload with no overhead and unlimited parallelism;
- per kind p50/p95/p99 of the HTTP request as the client sees it (request sent → body read, with
  the standard library's ``http.client`` on a keep-alive connection),
  and the **API overhead**: that time minus the repository call (``TicketLists.page``), which the
  API reports in ``Server-Timing: repo;dur=…``; and, from ``Server-Timing: app;dur=…`` (the
  Observability middleware: request in → headers out), the part spent inside the API process
  besides the repository call (authentication, parsing, rendering) as opposed to the client and
  the loopback connection.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import psycopg

from bench import search
from bench.search import log

KINDS = [  # (label, goal p95 ms)
    ("one word", 50),
    ("two words", 50),
    ("three words", 50),
    ("word + prefix", 50),
    ("word + status/priority filter", 50),
    ("filtered lists, sorts", 15),
    ("deep pages (page 20–200)", 50),
]
SEARCH_KINDS = {label for label, _ in KINDS[:5]}
SAMPLED_TICKETS = 3_000
WARM_UP = 100  # requests per client before anything is timed
STOP_WORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such that the their then "
                       "there these they this to was will with".split())
WORD = re.compile(r"[a-z][a-z0-9]*")


@dataclass
class Sample:
    kind: str
    agent: bool
    params: dict[str, str]
    client_ms: float = 0.0
    repo_ms: float = 0.0
    app_ms: float = 0.0
    status: int = 0
    total: int = 0
    engine: str = ""  # what found a search's page (Server-Timing repo;desc=…): tantivy or postgres


@dataclass
class Context:
    texts: list[list[str]]  # each sampled ticket's words, in order
    team_ids: list[int]
    user_ids: list[int]
    tokens: dict[bool, str] = field(default_factory=dict)  # agent? → token


def prepare(url: str, seed: int) -> Context:
    """Sampled tickets' words, the account's teams and users, and the two tokens (made once; their
    values are kept in the database's ``bench_http_tokens`` table, hashed in ``api_tokens``)."""
    from pulse.services.auth import hash_token, new_token_value

    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as db:
        account_id, newest = db.execute(
            "SELECT a.id, (SELECT max(id) FROM tickets t WHERE t.account_id = a.id) FROM accounts a "
            "WHERE a.name = 'Bench'").fetchone()
        ids = rng.sample(range(1, newest + 1), min(SAMPLED_TICKETS, newest))
        rows = db.execute(
            "SELECT t.subject, coalesce(t.description, ''), coalesce((SELECT string_agg(c.body, ' ' ORDER BY c.id) "
            "FROM ticket_comments c WHERE c.ticket_id = t.id AND NOT c.is_internal), '') "
            "FROM tickets t WHERE t.id = ANY(%s) AND t.account_id = %s AND t.deleted_at IS NULL ORDER BY t.id",
            (ids, account_id)).fetchall()
        texts = [[w for w in WORD.findall(" ".join(row).lower()) if len(w) >= 2 and w not in STOP_WORDS]
                 for row in rows]
        team_ids = [r[0] for r in db.execute("SELECT id FROM teams WHERE account_id = %s", (account_id,))]
        user_ids = [r[0] for r in db.execute("SELECT id FROM users WHERE account_id = %s", (account_id,))]
        db.execute("CREATE TABLE IF NOT EXISTS bench_http_tokens (agent boolean PRIMARY KEY, value text NOT NULL)")
        tokens = {agent: value for agent, value in db.execute("SELECT agent, value FROM bench_http_tokens")}
        for agent in (True, False):
            if agent in tokens:
                continue
            value = new_token_value()
            permissions = ["readSupport", "writeSupport"] if agent else ["readSupport"]
            db.execute("INSERT INTO api_tokens (account_id, user_id, name, token_hash, token_prefix, permissions, "
                       "is_platform_admin) VALUES (%s, NULL, %s, %s, %s, %s, false)",
                       (account_id, f"bench http {'agent' if agent else 'reader'}", hash_token(value), value[:12],
                        permissions))
            db.execute("INSERT INTO bench_http_tokens VALUES (%s, %s)", (agent, value))
            tokens[agent] = value
    return Context([t for t in texts if len(t) >= 3], team_ids, user_ids, tokens)


def _words(rng: random.Random, context: Context, count: int) -> list[str]:
    """``count`` different words at random positions of one random ticket's text."""
    while True:
        text = rng.choice(context.texts)
        chosen: list[str] = []
        for _ in range(count * 10):
            word = rng.choice(text)
            if word not in chosen:
                chosen.append(word)
            if len(chosen) == count:
                return chosen


def params_for(kind: str, rng: random.Random, context: Context) -> dict[str, str]:
    if kind in ("one word", "two words", "three words"):
        return {"search": " ".join(_words(rng, context, {"one word": 1, "two words": 2, "three words": 3}[kind]))}
    if kind == "word + prefix":
        while True:
            first, second = _words(rng, context, 2)
            if len(second) >= 3:
                break
        typed = second[:rng.randint(3, max(3, len(second) - 1))]
        return {"search": f"{first} {typed}"}
    if kind == "word + status/priority filter":
        params = {"search": _words(rng, context, 1)[0]}
        if rng.random() < 0.8:
            params["status"] = rng.choice(["open", "open,in_progress", "in_progress", "waiting_customer"])
        if "status" not in params or rng.random() < 0.4:
            params["priority"] = rng.choice(["urgent", "high", "urgent,high"])
        if rng.random() < 0.5:
            params["sort"] = rng.choice(["priority", "-createdAt", "-updatedAt"])
        return params
    if kind == "filtered lists, sorts":
        return search.list_params(rng, context.team_ids, context.user_ids)
    if kind == "deep pages (page 20–200)":
        page = str(rng.randint(20, 200))
        return rng.choice([
            {"status": "open", "sort": "priority", "page": page},
            {"sort": "-createdAt", "page": page},
            {"sort": "-updatedAt", "page": page},
            {"assignedToTeamId": str(rng.choice(context.team_ids)), "page": page},
            {"status": "open,in_progress", "priority": "urgent,high", "sort": "-createdAt", "page": page},
        ])
    raise ValueError(kind)


def plan(seed: int, per_kind: int, context: Context) -> list[Sample]:
    rng = random.Random(seed)
    samples = [Sample(label, i % 2 == 0, params_for(label, rng, context)) for label, _ in KINDS for i in range(per_kind)]
    rng.shuffle(samples)
    return samples


def _server_timing(header: str) -> dict[str, float]:
    timings = {}
    for entry in header.split(","):
        name, _, rest = entry.strip().partition(";")
        match = re.search(r"dur=([0-9.]+)", rest)
        if match:
            timings[name] = float(match.group(1))
    return timings


def run_client(base_url: str, tokens: dict[bool, str], samples: list[Sample], start_at: float) -> list[Sample]:
    """One client (a process of its own): the requests one after the other on one keep-alive
    connection, from ``start_at`` (time.time) on. The standard library's ``http.client``: httpx
    spends ~1 ms more of the client's CPU per request, which is no part of what the API costs."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.request("GET", "/api/health/live")  # the connection is open before the clock starts
    connection.getresponse().read()
    while time.time() < start_at:
        time.sleep(0.005)
    for sample in samples:
        path = "/api/tickets?" + urllib.parse.urlencode(sample.params)
        started = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": f"Bearer {tokens[sample.agent]}"})
        response = connection.getresponse()
        body = response.read()
        sample.client_ms = (time.perf_counter() - started) * 1000
        sample.status = response.status
        header = ", ".join(value for name, value in response.getheaders() if name.lower() == "server-timing")
        timings = _server_timing(header)
        sample.repo_ms, sample.app_ms = timings.get("repo", 0.0), timings.get("app", 0.0)
        engine = re.search(r"repo;[^,]*desc=(\w+)", header)
        sample.engine = engine.group(1) if engine else ""
        if response.status == 200:
            sample.total = json.loads(body)["pagination"]["total"]
    connection.close()
    return samples


def run_clients(base_url: str, tokens: dict[bool, str], samples: list[Sample], clients: int) -> list[Sample]:
    shares = [samples[i::clients] for i in range(clients)]
    start_at = time.time() + 1.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        results = pool.starmap(run_client, [(base_url, tokens, share, start_at) for share in shares])
    return [sample for share in results for sample in share]


def _busy_client(url: str, rows: list[int], start_at: float) -> list[float]:
    """One client of the floor: per request a query that only burns PostgreSQL's CPU
    (``generate_series`` of so many rows), one after the other; their times in ms."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT 1")
        while time.time() < start_at:
            time.sleep(0.005)
        times = []
        for count in rows:
            started = time.perf_counter()
            db.execute("SELECT sum(i) FROM generate_series(1, %s) i", (count,)).fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return times


def replay_floor(url: str, one: list[Sample], clients: int) -> list[Sample]:
    """The floor of "4 clients ÷ 1 client" for this very workload: each request of the one-client
    run replaced by a query that is nothing but server CPU for as long as that request took, on a
    server with no limit on parallelism (PostgreSQL backends), run by 1 client and by ``clients``
    (separate processes, the requests shared as ``run_clients`` shares them). On 2 cores, requests
    that cost the same CPU can do no better than this ratio, kind by kind."""
    probe = _busy_client(url, [1_000_000] * 12, 0.0)
    rows_per_ms = 1_000_000 / pct(probe[2:], 50)
    context = multiprocessing.get_context("spawn")
    replays = []
    for count in (1, clients):
        shares = [one[i::count] for i in range(count)]
        with context.Pool(count) as pool:
            start_at = time.time() + 1.0
            times = pool.starmap(_busy_client, [(url, [max(1, int(s.client_ms * rows_per_ms)) for s in share], start_at)
                                                for share in shares])
        replays.append([Sample(s.kind, s.agent, s.params, client_ms=ms)
                        for share, share_times in zip(shares, times) for s, ms in zip(share, share_times)])
    return replays


def start_api(url: str, workdir: Path, code: Path) -> tuple[subprocess.Popen, str]:
    """``pulse api`` from the tree ``code`` on database ``url``; its base URL once it answers."""
    from pulse.devstack import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PULSE_API_PORT": str(port),
           "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens: reads do not need Temporal
           "PULSE_RATE_PER_TOKEN": "0", "PULSE_RATE_PER_ADDRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
    api = subprocess.Popen([sys.executable, "-m", "pulse.cli", "api"], env=env, cwd=code,
                           stdout=(workdir / "api.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"pulse api exited: {(workdir / 'api.log').read_text()[-2000:]}")
        try:
            if httpx.get(base_url + "/api/health/live", timeout=2).status_code == 200:
                return api, base_url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError("pulse api did not answer")


def wait_for_search_index(url: str) -> None:
    """Until the API's search indexer has indexed every queued ticket (a new index: all of them)."""
    with psycopg.connect(url, autocommit=True) as db:
        if db.execute("SELECT to_regclass('search_index_queue')").fetchone()[0] is None:
            return
        started, pending = time.monotonic(), -1
        while pending != 0:  # a new index's every ticket is queued when the indexer first starts
            pending, generation = db.execute("SELECT (SELECT count(*) FROM search_index_queue), "
                                             "(SELECT generation FROM search_index_state)").fetchone()
            pending = pending or (-1 if generation == 0 else 0)
            if pending:
                log(f"  search index: {pending:,} tickets still to index ({time.monotonic() - started:.0f} s)")
                time.sleep(15)
        log(f"search index caught up in {time.monotonic() - started:.0f} s")
    index = Path(os.environ.get("PULSE_SEARCH_INDEX_DIR", ""))
    if index.is_dir():  # as the tables are prewarmed: the index's files read once (into the OS cache)
        for path in index.iterdir():
            if path.is_file():
                with path.open("rb") as f:
                    while f.read(1 << 24):
                        pass


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def report(one: list[Sample], four: list[Sample], per_kind: int, floor: list[list[Sample]]) -> None:
    """Per kind, the API with 1 and 4 clients, and the floor of the ratio (``replay_floor``): the
    goal "4 clients p95 ≤ 2× one client" is judged against what the machine allows."""
    failed = [s for s in one + four if s.status != 200]
    if failed:
        print(f"\n{len(failed)} requests failed, e.g. {failed[0].status} {failed[0].params}")
    print(f"\n| through `GET /api/tickets` (n = {per_kind} per kind and run) | 1 client p50 / p95 / p99 ms "
          f"| repo p50 / p95 | 4 clients p50 / p95 ms | 4 ÷ 1 p95 | floor 4 ÷ 1 p95 | goal p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [(label, goal, lambda s, label=label: s.kind == label) for label, goal in KINDS]
    rows.append(("**all searches**", 50, lambda s: s.kind in SEARCH_KINDS))
    for label, goal, chosen in rows:
        a = [s.client_ms for s in one if chosen(s)]
        r = [s.repo_ms for s in one if chosen(s)]
        b = [s.client_ms for s in four if chosen(s)]
        floor_ratio = pct([s.client_ms for s in floor[1] if chosen(s)], 95) / pct(
            [s.client_ms for s in floor[0] if chosen(s)], 95)
        met = pct(a, 95) <= goal and pct(b, 95) <= 2 * pct(a, 95)
        print(f"| {label} | {pct(a, 50):.1f} / {pct(a, 95):.1f} / {pct(a, 99):.1f} | {pct(r, 50):.1f} / "
              f"{pct(r, 95):.1f} | {pct(b, 50):.1f} / {pct(b, 95):.1f} | {pct(b, 95) / pct(a, 95):.2f} | "
              f"{floor_ratio:.2f} | ≤ {goal} {'✓' if met else '✗'} |")
    searches = [s for s in one + four if s.kind in SEARCH_KINDS]
    by_index = sum(s.engine == "tantivy" for s in searches)
    print(f"\nsearches found by the search index: {by_index:,} of {len(searches):,} (the rest: PostgreSQL)")
    print("\n| API overhead, ms (1 client) | p50 | p95 | 4 clients p50 | p95 |\n|---|---:|---:|---:|---:|")
    for label, measure in (
        ("HTTP request − repository call (the goal: p50 ≤ 3)", lambda s: s.client_ms - s.repo_ms),
        ("  inside the API process (app − repo)", lambda s: s.app_ms - s.repo_ms),
        ("  client and loopback (request − app)", lambda s: s.client_ms - s.app_ms),
    ):
        a, b = [measure(s) for s in one], [measure(s) for s in four]
        print(f"| {label} | {pct(a, 50):.2f} | {pct(a, 95):.2f} | {pct(b, 50):.2f} | {pct(b, 95):.2f} |")
    print("\nslowest requests per kind (1 client: ms total / repo):")
    for label, _ in KINDS:
        slow = sorted((s for s in one if s.kind == label), key=lambda s: -s.client_ms)[:3]
        print(f"  {label}: " + "; ".join(f"{s.client_ms:.0f}/{s.repo_ms:.0f} {s.params}"
                                         f"{' +internal' if s.agent else ''} (total {s.total:,})" for s in slow))


def _writer(url: str, rate: float, stop_at: float, ticket_ids: list[int]) -> list[float]:
    """Changes ``rate`` tickets a second (``UPDATE … SET subject = subject``: the search queue's
    trigger fires, nothing shown changes) until ``stop_at``; for each, the seconds from its commit
    until the index had taken it (its queue row gone or taken again by a later write)."""
    rng = random.Random(3)
    waiting: dict[int, tuple[int, float]] = {}  # ticket id → (seq written, commit time)
    indexed_after: list[float] = []
    with psycopg.connect(url, autocommit=True) as db:
        next_write = time.monotonic()
        while time.monotonic() < stop_at or waiting:
            now = time.monotonic()
            if now >= next_write and now < stop_at:
                ticket_id = rng.choice(ticket_ids)
                db.execute("UPDATE tickets SET subject = subject WHERE id = %s", (ticket_id,))
                seq = db.execute("SELECT seq FROM search_index_queue WHERE ticket_id = %s", (ticket_id,)).fetchone()
                if seq is not None:
                    waiting[ticket_id] = (seq[0], time.monotonic())
                else:  # indexed between the two statements
                    indexed_after.append(time.monotonic() - now)
                next_write += 1 / rate
            if waiting:
                rows = dict(db.execute("SELECT ticket_id, seq FROM search_index_queue WHERE ticket_id = ANY(%s)",
                                       (list(waiting),)).fetchall())
                for ticket_id, (seq, committed) in list(waiting.items()):
                    if rows.get(ticket_id) != seq:
                        indexed_after.append(time.monotonic() - committed)
                        del waiting[ticket_id]
            time.sleep(0.005)
    return indexed_after


def searches_during_writes(url: str, base_url: str, context: Context, samples: list[Sample],
                           rate: float) -> tuple[list[Sample], list[float]]:
    with psycopg.connect(url) as db:
        ticket_ids = [row[0] for row in db.execute(
            "SELECT id FROM tickets WHERE account_id = (SELECT id FROM accounts WHERE name = 'Bench') "
            "AND deleted_at IS NULL ORDER BY random() LIMIT 20000").fetchall()]
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        # the writer runs a little longer than the searches on both sides
        writing = pool.apply_async(_writer, (url, rate, time.monotonic() + 10 + len(samples) * 0.05, ticket_ids))
        time.sleep(3)
        during = run_clients(base_url, context.tokens, samples, 1)
        return during, writing.get()
    finally:
        pool.close()


def report_during_writes(during: list[Sample], indexed_after: list[float], rate: float) -> None:
    searches = [s for s in during if s.kind in SEARCH_KINDS]
    values = [s.client_ms for s in searches]
    by_index = sum(s.engine == "tantivy" for s in searches)
    print(f"\nwhile {rate:g} of the account's tickets change per second (committed by SQL; the API's indexer "
          f"takes them): all searches, 1 client p50 / p95 / p99 {pct(values, 50):.1f} / {pct(values, 95):.1f} / "
          f"{pct(values, 99):.1f} ms; {by_index:,} of {len(searches):,} found by the search index")
    ms = [v * 1000 for v in indexed_after]
    print(f"write → in the index (its queue row gone), {len(ms):,} writes: p50 {pct(ms, 50):.0f} / p95 {pct(ms, 95):.0f}"
          f" / p99 {pct(ms, 99):.0f} / max {max(ms, default=0):.0f} ms")


def measure(url: str, per_kind: int, seed: int, prewarm: Callable[[], None], code: Path | None = None,
            writes_per_second: float = 0.0) -> int:
    """The run on database ``url`` (``prewarm`` reads its tables and indexes into memory first),
    the API run from the tree ``code`` (default: this one)."""
    context = prepare(url, seed)
    log(f"{len(context.texts):,} sampled tickets' words; starting pulse api …")
    prewarm()
    with tempfile.TemporaryDirectory(prefix="pulse-bench-http-") as workdir:
        api, base_url = start_api(url, Path(workdir), code or search.ROOT)
        log(f"pulse api from {code or search.ROOT} at {base_url}")
        wait_for_search_index(url)
        try:
            log(f"warming up: 4 clients × {WARM_UP} requests (seed {seed + 2}) …")
            run_clients(base_url, context.tokens, plan(seed + 2, max(1, WARM_UP * 4 // len(KINDS)), context), 4)
            log(f"1 client, {per_kind * len(KINDS)} requests (seed {seed}) …")
            one = run_clients(base_url, context.tokens, plan(seed, per_kind, context), 1)
            log(f"4 clients, {per_kind * len(KINDS)} requests (seed {seed + 1}) …")
            four = run_clients(base_url, context.tokens, plan(seed + 1, per_kind, context), 4)
            log("the 4-client floor: the one-client run replayed as pure PostgreSQL CPU, 1 client then 4 …")
            floor = replay_floor(url, one, 4)
            during: list[Sample] = []
            if writes_per_second:
                log(f"1 client while {writes_per_second}/s of the account's tickets change (seed {seed + 4}) …")
                during, indexed_after = searches_during_writes(url, base_url, context, plan(seed + 4, per_kind, context),
                                                               writes_per_second)
        finally:
            api.terminate()
            try:
                api.wait(10)
            except subprocess.TimeoutExpired:
                api.kill()
    print(f"\nload after the run: {search.load()}")
    report(one, four, per_kind, floor)
    if during:
        report_during_writes(during, indexed_after, writes_per_second)
    return 0
