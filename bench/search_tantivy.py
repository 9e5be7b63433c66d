"""An embedded search engine (tantivy) against PostgreSQL on ``bench/search.py``'s million tickets
(issue 15, "a path beyond one machine").

    flock /tmp/pulse-bench.lock .venv/bin/python bench/search_tantivy.py --embedded /work/bench/pg \\
        [--index /work/bench/tantivy] [--rebuild] [--queries 200] [--seed 11] [--fresh-seconds 60]

1. **Index** (built when ``--index`` holds none, or ``--rebuild``): every live ticket of the
   database with its comments, read in one ordered pass, one document each, exactly as the API's
   indexer builds them (``pulse.search_index.documents``; the API's own index is built by its
   indexer through ``search_index_queue``: bench/search.py --http waits for it). Build time, index
   size, the builder's peak RSS.
2. **Queries**: the search kinds of ``bench/search_http.py``'s mix (its generator and seeds:
   one/two/three words, word + prefix, word + status/priority filters with a sort half the time),
   page size 50, each as an agent or a reader (half and half). Timed per query: **tantivy**
   (``IndexSearcher.find``: the page's ids and the total), **tantivy + rows** (then
   ``TicketLists.page_of_found``: the rows, ranked as PostgreSQL ranks, and their snippets — the
   API's path but for its 1-query look at the index queue) and **PostgreSQL**
   (``TicketLists.page``, PostgreSQL's own search). 1 searcher, then 4 at once (processes), the
   same samples for each engine, after a warm-up.
3. **Agreement**: for the first ``--agree`` samples, newest first (both sorted by createdAt) and as
   asked: the share of PostgreSQL's page the index's page holds, and whether totals agree where
   both are exact.
4. **Freshness** (``--fresh-seconds``): one writer process adds or replaces documents at
   ``--write-rate`` per second (in another account, so the bench account's results do not change)
   and commits every ``--commit-ms``; one reader process runs the query mix and reloads its
   searcher every ``--reload-ms``, noting when each written version becomes visible (write →
   visible) and what the searches cost with and without the writer. The written documents are
   deleted at the end. (The API's indexer commits whenever its queue holds something: see
   bench/search.py --http --writes-per-second.)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import tantivy  # noqa: E402

from bench import search, search_http  # noqa: E402
from bench.search import log  # noqa: E402
from pulse.domain.ticket_query import parse_ticket_query  # noqa: E402
from pulse.repositories.search_index import DOCUMENTS_SELECT  # noqa: E402
from pulse.search_index.documents import (  # noqa: E402
    TicketText,
    analyzer,
    create_index,
    make_document,
    open_index,
    prefix_terms,
)
from pulse.search_index.engine import IndexSearcher, servable  # noqa: E402

DEFAULT_INDEX = Path("/work/bench/tantivy")
FRESH_ACCOUNT = 999_999_999  # the freshness writer's documents: no bench query sees them
FRESH_MARK = "freshmarkzq"
EXPORT = DOCUMENTS_SELECT + " WHERE t.deleted_at IS NULL ORDER BY t.id"
COPY_ID_STEP = 100_000_000  # --copies: copy k of ticket i is ticket i + k × this


# -- the index -------------------------------------------------------------------------------------

def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(url: str, path: Path, copies: int = 1) -> dict[str, str]:
    """Every live ticket into a new index at ``path``: one server-side cursor ordered by id, a
    writer with two indexing threads. ``copies`` > 1: each ticket also as ``copies - 1`` older
    tickets of the same account (ids + k × ``COPY_ID_STEP``, created and updated k × the data's
    time span earlier): ten times the data without ten times the database."""
    index = create_index(path)
    writer = index.writer(heap_size=1_000_000_000, num_threads=2)
    started, count, stemmer = time.monotonic(), 0, analyzer()
    with psycopg.connect(url) as db, db.cursor(name="export") as cursor:
        oldest, newest = db.execute("SELECT (extract(epoch FROM min(created_at)) * 1e6)::bigint, "
                                    "(extract(epoch FROM max(updated_at)) * 1e6)::bigint FROM tickets").fetchone()
        span = newest - oldest + 1
        cursor.itersize = 5_000
        cursor.execute(EXPORT)
        for row in cursor:
            ticket = TicketText(*row)
            terms = prefix_terms(ticket, stemmer)
            for k in range(copies):
                copy = ticket if k == 0 else replace(ticket, ticket_id=ticket.ticket_id + k * COPY_ID_STEP,
                                                     created_us=ticket.created_us - k * span,
                                                     updated_us=ticket.updated_us - k * span)
                writer.add_document(make_document(copy, stemmer, terms))
                count += 1
                if count % 1_000_000 == 0 or (copies == 1 and count % 200_000 == 0):
                    log(f"  {count:,} documents ({time.monotonic() - started:.0f} s)")
    fed = time.monotonic() - started
    writer.commit()
    committed = time.monotonic() - started
    writer.wait_merging_threads()
    merged = time.monotonic() - started
    index.reload()
    segments = index.searcher().num_segments
    return {
        "documents": f"{count:,}" + (f" ({copies} copies of each ticket)" if copies > 1 else ""),
        "read + fed (PostgreSQL export and indexing overlap)": f"{fed:.0f} s",
        "committed": f"{committed:.0f} s",
        "merges finished": f"{merged:.0f} s",
        "index size": f"{directory_size(path) / 1e9:.2f} GB ({segments} segments)",
        "builder peak RSS": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB",
    }


@dataclass
class Result:
    ids: list[int]
    total: int
    estimated: bool = False


class Engine:
    """The API's search on the index for one account (``GET /api/tickets?search=…``, page 1)."""

    def __init__(self, index: tantivy.Index, account_id: int) -> None:
        self.index, self.account_id = index, account_id
        self.searcher = IndexSearcher(index)

    def page(self, params: dict[str, str], agent: bool) -> Result:
        query = parse_ticket_query(params)
        assert servable(query), params
        found = self.searcher.find(self.account_id, query, agent)
        return Result(found.ids, found.total, found.estimated)


# -- timed runs ------------------------------------------------------------------------------------

@dataclass
class Timed:
    kind: str
    agent: bool
    params: dict[str, str]
    engine_ms: float = 0.0  # tantivy alone, or TicketLists.page
    page_ms: float = 0.0  # tantivy + rows and snippets; for PostgreSQL the same as engine_ms
    ids: list[int] = field(default_factory=list)
    total: int = 0
    estimated: bool = False


async def _run_share(which: str, url: str, index_path: str, account_id: int, warm: list[Timed],
                     share: list[Timed], start_at: float) -> list[Timed]:
    from sqlalchemy import text

    from pulse.db import make_engine, make_sessionmaker
    from pulse.repositories.ticket_lists import TicketLists

    db = make_engine(url, pool_size=1)
    sessions = make_sessionmaker(db)
    async with db.connect() as connection:  # the connection touches the tickets' buffers once (search.py)
        await connection.execute(text("SET max_parallel_workers_per_gather = 0"))
        await connection.execute(text("SELECT sum(length(subject)) FROM tickets"))
        await connection.execute(text("RESET max_parallel_workers_per_gather"))
    engine = Engine(open_index(Path(index_path)), account_id) if which.startswith("tantivy") else None

    async def one(sample: Timed) -> None:
        query = parse_ticket_query(sample.params)
        async with sessions() as session:
            lists = TicketLists(session)
            started = time.perf_counter()
            if engine is None:
                page = await lists.page(account_id, query, include_internal=sample.agent)
                sample.engine_ms = sample.page_ms = (time.perf_counter() - started) * 1000
                sample.ids, sample.total, sample.estimated = [t.id for t in page.tickets], page.total, \
                    page.total_is_estimate
                return
            result = engine.page(sample.params, sample.agent)
            searched = time.perf_counter()
            if which == "tantivy-alone":  # --copies: most ids are in the index only
                sample.engine_ms = sample.page_ms = (searched - started) * 1000
                sample.ids, sample.total, sample.estimated = result.ids, result.total, result.estimated
                return
            page = await lists.page_of_found(account_id, query, include_internal=sample.agent, ids=result.ids,
                                             total=result.total, estimated=result.estimated)
            sample.engine_ms = (searched - started) * 1000
            sample.page_ms = (time.perf_counter() - started) * 1000
            sample.ids, sample.total, sample.estimated = [t.id for t in page.tickets], page.total, \
                page.total_is_estimate

    for sample in warm:
        await one(sample)
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    for sample in share:
        await one(sample)
    await db.dispose()
    return share


def _share_process(*args: Any) -> list[Timed]:
    return asyncio.run(_run_share(*args))


def run(which: str, url: str, index_path: Path, account_id: int, samples: list[Timed], warm: list[Timed],
        clients: int) -> list[Timed]:
    shares = [samples[i::clients] for i in range(clients)]
    warms = [warm[i::clients] for i in range(clients)]
    start_at = time.time() + 8.0  # every process is connected and warmed by then
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.starmap(_share_process, [(which, url, str(index_path), account_id, w, s, start_at)
                                                for w, s in zip(warms, shares)])
    return [sample for share in results for sample in share]


def timed_samples(seed: int, per_kind: int, context: search_http.Context) -> list[Timed]:
    return [Timed(s.kind, s.agent, s.params) for s in search_http.plan(seed, per_kind, context)
            if s.kind in search_http.SEARCH_KINDS]


def pct(values: list[float], q: float) -> float:
    return search_http.pct(values, q)


ENGINES = (("tantivy", "engine_ms", "tantivy"), ("tantivy", "page_ms", "tantivy + rows"),
           ("postgres", "engine_ms", "PostgreSQL"))


def report_latency(runs: dict[str, list[Timed]]) -> None:
    """runs: '<engine> <clients>' → samples."""
    labels = [label for label, _ in search_http.KINDS if label in search_http.SEARCH_KINDS]
    for clients in (1, 4):
        print(f"\n| {clients} searcher{'s' if clients > 1 else ''}, p50 / p95 ms | "
              + " | ".join(title for _, _, title in ENGINES) + " |")
        print("|---|" + "---:|" * len(ENGINES))
        for label in [*labels, "**all searches**"]:
            cells = []
            for which, attr, _ in ENGINES:
                values = [getattr(s, attr) for s in runs[f"{which} {clients}"]
                          if s.kind == label or label == "**all searches**"]
                cells.append(f"{pct(values, 50):.1f} / {pct(values, 95):.1f}")
            print(f"| {label} | " + " | ".join(cells) + " |")
    for key in ("tantivy 1", "postgres 1"):
        slow = sorted(runs[key], key=lambda s: -s.engine_ms)[:4]
        print(f"slowest ({key}): " + "; ".join(f"{s.engine_ms:.0f} ms {s.params}{' +internal' if s.agent else ''} "
                                              f"(total {s.total:,})" for s in slow))


def agreement(tantivy_run: list[Timed], postgres_run: list[Timed], url: str, index_path: Path, account_id: int,
              count: int) -> None:
    """The share of PostgreSQL's page in tantivy's, as asked and newest first."""
    newest = [Timed(s.kind, s.agent, {**s.params, "sort": "-createdAt"}) for s in postgres_run[:count]]
    tn = asyncio.run(_run_share("tantivy", url, str(index_path), account_id, [], [Timed(s.kind, s.agent, dict(s.params))
                                                                                 for s in newest], 0))
    pn = asyncio.run(_run_share("postgres", url, str(index_path), account_id, [], newest, 0))
    by_params = {(repr(s.params), s.agent): s for s in tantivy_run}
    print("\n| agreement (first %d samples) | pages compared | PostgreSQL's page in tantivy's (mean) "
          "| identical pages | totals equal where both are exact |" % count)
    print("|---|---:|---:|---:|---:|")
    for label, pairs in (
        ("as asked (ranked: different ranking)", [(by_params[(repr(p.params), p.agent)], p) for p in postgres_run[:count]]),
        ("newest first (sort=-createdAt)", list(zip(tn, pn))),
    ):
        shares, same, totals, exact = [], 0, 0, 0
        for t, p in pairs:
            if p.ids:
                shares.append(len(set(t.ids) & set(p.ids)) / len(p.ids))
                same += t.ids == p.ids
            if not p.estimated and not t.estimated:
                exact += 1
                totals += t.total == p.total
        print(f"| {label} | {len(shares)} | {sum(shares) / max(len(shares), 1):.3f} | {same} | {totals} of {exact} |")
        misses = [(t, p) for t, p in pairs if p.ids and set(p.ids) - set(t.ids)][:3]
        for t, p in misses:
            print(f"   differs: {p.params}{' +internal' if p.agent else ''}: PostgreSQL total {p.total:,}"
                  f"{' (est.)' if p.estimated else ''}, tantivy {t.total:,}{' (est.)' if t.estimated else ''}; "
                  f"only in PostgreSQL's page {sorted(set(p.ids) - set(t.ids))[:5]}")


# -- freshness -------------------------------------------------------------------------------------

def _writer_process(index_path: str, rate: float, commit_ms: int, seconds: float, start_at: float,
                    words: list[str]) -> dict[str, list[float]]:
    index = open_index(Path(index_path))
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    rng, stemmer = random.Random(5), analyzer()
    written: list[int] = []
    commits: list[float] = []
    while time.time() < start_at:
        time.sleep(0.005)
    began = time.monotonic()
    next_write, next_commit, n = began, began + commit_ms / 1000, 0
    while time.monotonic() - began < seconds:
        now = time.monotonic()
        if now >= next_commit:
            started = time.perf_counter()
            writer.commit()
            commits.append((time.perf_counter() - started) * 1000)
            next_commit += commit_ms / 1000
        if now >= next_write:
            if written and rng.random() < 0.3:  # an update of an earlier document
                ticket_id = rng.choice(written)
                writer.delete_documents_by_query(tantivy.Query.term_query(index.schema, "ticket_id", ticket_id))
            else:
                ticket_id = 2_000_000_000 + n
                written.append(ticket_id)
            n += 1
            text = f"{FRESH_MARK} " + " ".join(rng.choices(words, k=60))
            stamp = time.time_ns() // 1000  # µs: the document's updated_at
            writer.add_document(make_document(TicketText(ticket_id, FRESH_ACCOUNT, stamp, stamp, "open", 2, text, ""),
                                              stemmer))
            next_write += 1 / rate
        time.sleep(max(0.0, min(next_write, next_commit) - time.monotonic()))
    writer.commit()
    writer.delete_documents_by_query(tantivy.Query.term_query(index.schema, "account_id", FRESH_ACCOUNT))
    writer.commit()
    writer.wait_merging_threads()
    return {"commits": commits, "documents": [float(n)]}


def _reader_process(index_path: str, account_id: int, samples: list[Timed], reload_ms: int, seconds: float,
                    start_at: float) -> dict[str, list[float]]:
    index = open_index(Path(index_path))
    index.config_reader(reload_policy="Manual")
    engine = Engine(index, account_id)
    mark = tantivy.Query.boolean_query([
        (tantivy.Occur.Must, tantivy.Query.term_query(index.schema, "account_id", FRESH_ACCOUNT)),
        (tantivy.Occur.Must, tantivy.Query.term_query(index.schema, "public", FRESH_MARK))])
    seen_until = 0
    visible: list[float] = []
    latencies: list[float] = []
    reloads: list[float] = []
    while time.time() < start_at:
        time.sleep(0.005)
    began = time.monotonic()
    next_reload, i = began, 0
    while time.monotonic() - began < seconds:
        if time.monotonic() >= next_reload:
            started = time.perf_counter()
            index.reload()
            reloads.append((time.perf_counter() - started) * 1000)
            searcher = index.searcher()
            hits = searcher.search(mark, 1000, count=False, order_by_field="updated_at", order=tantivy.Order.Desc).hits
            now = time.time_ns() // 1000
            stamps = [stamp for stamp, _ in hits if stamp > seen_until]
            visible += [(now - stamp) / 1e3 for stamp in stamps]
            seen_until = max([seen_until, *stamps])
            next_reload += reload_ms / 1000
        sample = samples[i % len(samples)]
        i += 1
        started = time.perf_counter()
        engine.page(sample.params, sample.agent)
        latencies.append((time.perf_counter() - started) * 1000)
    return {"visible": visible, "search": latencies, "reload": reloads,
            "rss": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3]}


def freshness(index_path: Path, account_id: int, samples: list[Timed], words: list[str], args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    seconds = args.fresh_seconds
    with context.Pool(2) as pool:
        start_at = time.time() + 3
        quiet = pool.apply_async(_reader_process, (str(index_path), account_id, samples, args.reload_ms, seconds / 2,
                                                   start_at)).get()
        print(f"\nload after the read-only part: {search.load()}")
        start_at = time.time() + 3
        writing = pool.apply_async(_writer_process, (str(index_path), args.write_rate, args.commit_ms, seconds,
                                                     start_at, words))
        reading = pool.apply_async(_reader_process, (str(index_path), account_id, samples, args.reload_ms, seconds,
                                                     start_at))
        busy, wrote = reading.get(), writing.get()
    print(f"load after the writing part: {search.load()}")
    print(f"\nfreshness: {int(wrote['documents'][0]):,} writes at {args.write_rate}/s (30 % replacing an earlier "
          f"document), a commit every {args.commit_ms} ms, the reader reloading every {args.reload_ms} ms:")
    print(f"the reader's peak RSS (the index is memory-mapped: the pages it touched count): {busy['rss'][0]:.0f} MB")
    print("| measure (ms) | p50 | p95 | p99 | max | n |\n|---|---:|---:|---:|---:|---:|")
    for label, values in (("write → visible to the reader", busy["visible"]), ("commit (writer)", wrote["commits"]),
                          ("reload (reader)", busy["reload"]), ("search, no writer", quiet["search"]),
                          ("search, writer committing", busy["search"])):
        print(f"| {label} | {pct(values, 50):.1f} | {pct(values, 95):.1f} | {pct(values, 99):.1f} | "
              f"{max(values):.1f} | {len(values):,} |")


def at_copies(url: str, args: argparse.Namespace, account_id: int, context: search_http.Context,
              warm: list[Timed]) -> int:
    """``--copies``: the index alone (its ids, its total), 1 and 4 searchers, per kind."""
    print(f"\n| the index alone at {args.copies} copies of each ticket, p50 / p95 / p99 ms | 1 searcher | 4 searchers |")
    print("|---|---:|---:|")
    runs = {clients: run("tantivy-alone", url, args.index, account_id, timed_samples(seed, args.queries, context),
                         warm, clients) for clients, seed in ((1, args.seed), (4, args.seed + 1))}
    labels = [label for label, _ in search_http.KINDS if label in search_http.SEARCH_KINDS]
    for label in [*labels, "**all searches**"]:
        cells = []
        for clients in (1, 4):
            values = [s.engine_ms for s in runs[clients] if s.kind == label or label == "**all searches**"]
            cells.append(f"{pct(values, 50):.1f} / {pct(values, 95):.1f} / {pct(values, 99):.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    slow = sorted(runs[1], key=lambda s: -s.engine_ms)[:5]
    print("slowest: " + "; ".join(f"{s.engine_ms:.0f} ms {s.params}{' +internal' if s.agent else ''} "
                                  f"(total {s.total:,}{' est.' if s.estimated else ''})" for s in slow))
    print(f"\nload at the end: {search.load()}")
    return 0


# -- main ------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedded", type=Path, metavar="DIR", help="bench/search.py's embedded PostgreSQL")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--queries", type=int, default=200, help="samples per search kind and run")
    parser.add_argument("--seed", type=int, default=11, help="bench/search_http.py's seed")
    parser.add_argument("--agree", type=int, default=300, help="samples compared page by page")
    parser.add_argument("--fresh-seconds", type=float, default=60, help="0: no freshness part")
    parser.add_argument("--write-rate", type=float, default=50)
    parser.add_argument("--commit-ms", type=int, default=250)
    parser.add_argument("--reload-ms", type=int, default=100)
    parser.add_argument("--copies", type=int, default=1,
                        help="build the index with this many copies of each ticket (older ones: ten times "
                             "the data without ten times the database) and time the index alone")
    parser.add_argument("--database", default=search.DATABASE)
    args = parser.parse_args()
    search.DATABASE = args.database
    server = search.start_embedded(args.embedded) if args.embedded else None
    try:
        url = search.database_url()
        print(f"machine: {os.cpu_count()} CPUs, load {search.load()}; tantivy {tantivy.__version__ if hasattr(tantivy, '__version__') else '0.27'}")
        if args.rebuild or not (args.index / "meta.json").exists():
            log(f"building the index at {args.index} …")
            for name, value in build(url, args.index, args.copies).items():
                print(f"| {name} | {value} |")
            print(f"load after the build: {search.load()}")
        if args.build_only:
            return 0
        print(f"index: {directory_size(args.index) / 1e9:.2f} GB")
        context = search_http.prepare(url, args.seed)
        with psycopg.connect(url) as db:
            account_id = db.execute("SELECT id FROM accounts WHERE name = 'Bench'").fetchone()[0]
        search.prewarm()
        log("reading the index files once (into the OS cache) …")
        for path in args.index.iterdir():
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass
        warm = timed_samples(args.seed + 2, 20, context)
        runs: dict[str, list[Timed]] = {}
        if args.copies > 1:
            return at_copies(url, args, account_id, context, warm)
        for clients, seed in ((1, args.seed), (4, args.seed + 1)):
            for which in ("tantivy", "postgres"):
                log(f"{which}, {clients} searcher(s), {args.queries} per kind (seed {seed}) …")
                runs[f"{which} {clients}"] = run(which, url, args.index, account_id,
                                                 timed_samples(seed, args.queries, context), warm, clients)
                print(f"  load: {search.load()}")
        report_latency(runs)
        if args.agree:
            agreement(runs["tantivy 1"], runs["postgres 1"], url, args.index, account_id, args.agree)
        if args.fresh_seconds:
            words = sorted({w for text in context.texts for w in text})
            freshness(args.index, account_id, timed_samples(args.seed + 3, 40, context), words, args)
        print(f"\nload at the end: {search.load()}")
        return 0
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
