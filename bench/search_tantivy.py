"""An embedded search engine (tantivy) against PostgreSQL on ``bench/search.py``'s million tickets
(issue 15, "a path beyond one machine").

    flock /tmp/pulse-bench.lock .venv/bin/python bench/search_tantivy.py --embedded /work/bench/pg \\
        [--index /work/bench/tantivy] [--rebuild] [--queries 200] [--seed 11] [--fresh-seconds 60]

1. **Index** (built when ``--index`` holds none, or ``--rebuild``): every live ticket of the
   database with its comments, read in one ordered pass, one tantivy document each: ``ticket_id``,
   ``account_id`` (indexed + fast: every query is restricted to one account), ``created_at`` /
   ``updated_at`` (fast: newest first, by update), ``status`` and ``priority_rank`` (indexed +
   fast: filters, the priority sort), ``public`` (subject, description, public comments) and
   ``notes`` (internal notes). A reader's words must be in ``public``; an agent's in ``public``
   or ``notes`` — the notes are a field of their own, so hiding them is a matter of which fields a
   query names, as exact as the two PostgreSQL documents. Tokenizer ``pulse_en``: split on what is
   not a letter or digit, lowercase, the English stop words, the Snowball English stemmer — on the
   bench vocabulary the same lexemes as PostgreSQL's ``english`` configuration (its parser differs
   on hyphenated words, e-mail addresses and apostrophes, which tantivy splits into words). Build
   time, index size, the builder's peak RSS.
2. **Queries**: the search kinds of ``bench/search_http.py``'s mix (its generator and seeds:
   one/two/three words, word + prefix, word + status/priority filters with a sort half the time),
   page size 50, each as an agent or a reader (half and half). The search text goes through the
   API's own parser (``pulse.domain.search``): the ``to_tsquery`` text PostgreSQL gets is
   translated operand by operand (words ANDed, the last word of three characters or more a
   prefix of its stem: a regex on the term dictionary). Ranked (no sort): BM25 over every match
   (PostgreSQL ranks the newest 100 matches with ts_rank_cd); ``-createdAt``/``-updatedAt``: by
   the fast field; ``priority``: one search per priority, highest first. Total: tantivy counts
   every match exactly (PostgreSQL: exact up to a few thousand matches, else estimated).
   Timed per query: **tantivy** (query built, searched, counted, the page's ids read from the fast
   field), **tantivy + rows** (then the page's 50 tickets by id and their snippets from
   PostgreSQL, ``TicketLists._snippets``: what the API would still need) and **PostgreSQL**
   (``TicketLists.page``, the API's search today). 1 searcher, then 4 at once (processes), the
   same samples for each engine, after a warm-up.
3. **Agreement**: for the first ``--agree`` samples, newest first (both sorted by createdAt) and as
   asked: the share of PostgreSQL's page that tantivy's page holds, and whether totals agree
   where PostgreSQL's is exact.
4. **Freshness** (``--fresh-seconds``): one writer process adds or replaces documents at
   ``--write-rate`` per second (in another account, so the bench account's results do not change)
   and commits every ``--commit-ms``; one reader process runs the query mix and reloads its
   searcher every ``--reload-ms``, noting when each written version becomes visible (write →
   visible) and what the searches cost with and without the writer. The written documents are
   deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import tantivy  # noqa: E402

from bench import search, search_http  # noqa: E402
from bench.search import log  # noqa: E402

DEFAULT_INDEX = Path("/work/bench/tantivy")
PAGE = 50
TOKENIZER = "pulse_en"
WHITESPACE = "pulse_ws"
MIN_PREFIX = 3  # pulse.domain.search.MIN_PREFIX_LENGTH: the typed prefix; its stem may be shorter
NOTES_BOOST = 0.25  # an internal note counts for less than the public text in a ranked page
RANK_WINDOW = 100  # ranked: the newest 100 matches are ranked (pulse.repositories.ticket_lists)
EXACT_MATCHES = 20_000  # words whose postings hold at most this many documents: every match is visited
WINDOW_SPARE = 4  # a recent window is sized to hold this many times the matches needed (by the bound)
FRESH_ACCOUNT = 999_999_999  # the freshness writer's documents: no bench query sees them
FRESH_MARK = "freshmarkzq"
OPERAND = re.compile(r"(!?)'((?:[^']|'')*)'(:\*)?")
EXPORT = """
    SELECT t.id, t.account_id, (extract(epoch FROM t.created_at) * 1e6)::bigint,
           (extract(epoch FROM t.updated_at) * 1e6)::bigint, t.status, t.priority_rank,
           t.subject || E'\\n' || coalesce(t.description, '') || E'\\n' || coalesce(c.public, ''),
           coalesce(c.internal, '')
      FROM tickets t
      LEFT JOIN LATERAL (
           SELECT string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE NOT is_internal) AS public,
                  string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE is_internal) AS internal
             FROM ticket_comments WHERE ticket_id = t.id) c ON true
     WHERE t.deleted_at IS NULL
     ORDER BY t.id
"""


# -- the index -------------------------------------------------------------------------------------

def analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40)).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword("english")).filter(tantivy.Filter.stemmer("english")).build())


def schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("ticket_id", indexed=True, fast=True)
    builder.add_unsigned_field("account_id", indexed=True, fast=True)
    builder.add_integer_field("created_at", fast=True)  # µs since the epoch
    builder.add_integer_field("updated_at", fast=True)
    builder.add_integer_field("written_at", fast=True)  # the freshness bench's write time (ns)
    builder.add_text_field("status", fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("priority_rank", indexed=True, fast=True)
    builder.add_text_field("public", tokenizer_name=TOKENIZER, index_option="position")
    builder.add_text_field("notes", tokenizer_name=TOKENIZER, index_option="position")
    # Every stem's starts from MIN_PREFIX_LENGTH characters on (the stem itself included), document
    # ids only: a prefix is one term, not the union of every term that starts with it.
    builder.add_text_field("public_prefixes", tokenizer_name=WHITESPACE, index_option="basic")
    builder.add_text_field("notes_prefixes", tokenizer_name=WHITESPACE, index_option="basic")
    return builder.build()


def open_index(path: Path, *, create: bool = False) -> tantivy.Index:
    if create:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        index = tantivy.Index(schema(), path=str(path))
    else:
        index = tantivy.Index.open(str(path))
    index.register_tokenizer(TOKENIZER, analyzer())
    index.register_tokenizer(WHITESPACE, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    return index


def prefixes(stems: list[str]) -> str:
    """Every start of every stem from ``MIN_PREFIX`` characters on, once, space-separated."""
    return " ".join({stem[:end] for stem in set(stems) for end in range(MIN_PREFIX, len(stem) + 1)})


def make_document(ticket_id: int, account_id: int, created: int, updated: int, status: str, rank: int,
                  public: str, notes: str, written_at: int = 0,
                  stemmer: tantivy.TextAnalyzer | None = None) -> tantivy.Document:
    document = tantivy.Document()
    document.add_unsigned("ticket_id", ticket_id)
    document.add_unsigned("account_id", account_id)
    document.add_integer("created_at", created)
    document.add_integer("updated_at", updated)
    document.add_integer("written_at", written_at)
    document.add_text("status", status)
    document.add_unsigned("priority_rank", rank)
    document.add_text("public", public)
    if notes:
        document.add_text("notes", notes)
    if stemmer is not None:
        document.add_text("public_prefixes", prefixes(stemmer.analyze(public)))
        if notes:
            document.add_text("notes_prefixes", prefixes(stemmer.analyze(notes)))
    return document


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(url: str, path: Path) -> dict[str, str]:
    """Every live ticket into a new index at ``path``: one server-side cursor ordered by id, a
    writer with two indexing threads."""
    index = open_index(path, create=True)
    writer = index.writer(heap_size=1_000_000_000, num_threads=2)
    started, count, stemmer = time.monotonic(), 0, analyzer()
    with psycopg.connect(url) as db, db.cursor(name="export") as cursor:
        cursor.itersize = 5_000
        cursor.execute(EXPORT)
        for row in cursor:
            writer.add_document(make_document(*row, stemmer=stemmer))
            count += 1
            if count % 200_000 == 0:
                log(f"  {count:,} documents ({time.monotonic() - started:.0f} s)")
    fed = time.monotonic() - started
    writer.commit()
    committed = time.monotonic() - started
    writer.wait_merging_threads()
    merged = time.monotonic() - started
    index.reload()
    segments = index.searcher().num_segments
    return {
        "documents": f"{count:,}",
        "read + fed (PostgreSQL export and indexing overlap)": f"{fed:.0f} s",
        "committed": f"{committed:.0f} s",
        "merges finished": f"{merged:.0f} s",
        "index size": f"{directory_size(path) / 1e9:.2f} GB ({segments} segments)",
        "builder peak RSS": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB",
    }


# -- searching -------------------------------------------------------------------------------------

@dataclass
class Result:
    ids: list[int]
    total: int
    estimated: bool = False


class Engine:
    """The API's search (``GET /api/tickets?search=…&status=…&priority=…&sort=…``, page 1) on the
    index, for one account."""

    def __init__(self, index: tantivy.Index, account_id: int, prefix_terms: bool = False,
                 windows: bool = False) -> None:
        """``prefix_terms``: a prefix is a term of the ``*_prefixes`` fields (else a regex on the
        term dictionary: the union of every term that starts with it). ``windows``: newest first
        (ranked or by createdAt), words in many documents are searched in a recent window of the
        account's tickets first (else every match is visited, and a ranked page is BM25 over all)."""
        self.index, self.account_id, self.prefix_terms, self.windows = index, account_id, prefix_terms, windows
        self.schema, self.analyzer = index.schema, analyzer()
        searcher = index.searcher()  # the account's size and time span: what a window's share is
        account = tantivy.Query.term_query(self.schema, "account_id", account_id)
        newest = searcher.search(account, 1, count=True, order_by_field="created_at", order=tantivy.Order.Desc)
        oldest = searcher.search(account, 1, count=False, order_by_field="created_at", order=tantivy.Order.Asc)
        self.tickets = max(newest.count, 1)
        self.newest_us = newest.hits[0][0] if newest.hits else 0
        self.span_us = max(self.newest_us - (oldest.hits[0][0] if oldest.hits else 0), 1)

    def bound(self, searcher: tantivy.Searcher, tsquery: str, agent: bool) -> int:
        """An upper bound of the documents the words match (every account's, deleted ones too):
        the smallest document frequency among the operands every match must hold, from the term
        dictionary; the index's size when there is no such operand (``or``, a prefix as a regex)."""
        fields = ["public", "notes"] if agent else ["public"]
        parts = tsquery.split(" | ")
        if len(parts) > 1:
            return searcher.num_docs
        least = searcher.num_docs
        for negated, quoted, star in OPERAND.findall(parts[0]):
            stems = self.analyzer.analyze(quoted.replace("''", "'"))
            if negated or not stems:
                continue
            if star and not (self.prefix_terms and len(stems) == 1 and len(stems[0]) >= MIN_PREFIX):
                continue
            suffix = "_prefixes" if star else ""
            least = min(least, min(sum(searcher.doc_freq(f"{name}{suffix}", stem) for name in fields)
                                   for stem in stems))
        return least

    def _word(self, text: str, prefix: bool, fields: list[str], ranked: bool) -> tantivy.Query | None:
        """One ``to_tsquery`` operand: its stems in one of ``fields`` (several: a phrase), the
        last stem a prefix when ``prefix``. None when it is only stop words (PostgreSQL drops it)."""
        stems = self.analyzer.analyze(text)
        if not stems:
            return None
        per_field = []
        for name in fields:
            if len(stems) == 1 and prefix and self.prefix_terms and len(stems[0]) >= MIN_PREFIX:
                query = tantivy.Query.term_query(self.schema, f"{name}_prefixes", stems[0])
            elif len(stems) == 1 and prefix:
                query = tantivy.Query.regex_query(self.schema, name, re.escape(stems[0]) + ".*")
            elif len(stems) == 1:
                query = tantivy.Query.term_query(self.schema, name, stems[0])
            else:
                query = tantivy.Query.phrase_query(self.schema, name, stems)  # (a prefixed last stem: not handled)
            if name == "notes" and ranked:
                query = tantivy.Query.boost_query(query, NOTES_BOOST)
            per_field.append(query)
        if len(per_field) == 1:
            return per_field[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in per_field])

    def words(self, tsquery: str, agent: bool, ranked: bool) -> tantivy.Query | None:
        """The ``to_tsquery`` text the API builds (``&``, ``|``, ``!``, quoted operands, ``:*``)."""
        fields = ["public", "notes"] if agent else ["public"]
        groups = []
        for part in tsquery.split(" | "):
            clauses = []
            for negated, quoted, star in OPERAND.findall(part):
                query = self._word(quoted.replace("''", "'"), bool(star), fields, ranked)
                if query is not None:
                    clauses.append((tantivy.Occur.MustNot if negated else tantivy.Occur.Must, query))
            if any(occur == tantivy.Occur.Must for occur, _ in clauses):
                groups.append(tantivy.Query.boolean_query(clauses))
        if not groups:
            return None
        return groups[0] if len(groups) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, g) for g in groups])

    def page(self, params: dict[str, str], agent: bool, searcher: tantivy.Searcher | None = None) -> Result:
        from pulse.domain.search import build_search_query
        from pulse.domain.tickets import PRIORITY_SEVERITY, Priority

        searcher = searcher or self.index.searcher()
        built = build_search_query(params["search"])
        sort = params.get("sort")
        words = self.words(built.every_weight, agent, ranked=not sort) if built else None
        if words is None:
            return Result([], 0)
        filters = [tantivy.Query.term_query(self.schema, "account_id", self.account_id)]
        if "status" in params:
            filters.append(tantivy.Query.term_set_query(self.schema, "status", params["status"].split(",")))
        ranks = sorted({PRIORITY_SEVERITY[Priority(p)] for p in params.get("priority", "").split(",") if p},
                       reverse=True)
        if ranks:
            filters.append(tantivy.Query.term_set_query(self.schema, "priority_rank", ranks))

        def query(*extra: tantivy.Query) -> tantivy.Query:
            restrict = tantivy.Query.const_score_query(
                tantivy.Query.boolean_query([(tantivy.Occur.Must, f) for f in [*filters, *extra]]), 0.0)
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, words), (tantivy.Occur.Must, restrict)])

        if self.windows and sort in (None, "-createdAt"):
            return self._newest_first(searcher, built.every_weight, agent, query, not sort)
        if not sort:
            found = searcher.search(query(), PAGE, count=True)
        elif sort in ("-createdAt", "-updatedAt"):
            by = "created_at" if sort == "-createdAt" else "updated_at"
            found = searcher.search(query(), PAGE, count=True, order_by_field=by, order=tantivy.Order.Desc)
        elif sort == "priority":  # priority_rank DESC, created_at DESC: highest priority first
            hits, total = [], 0
            for rank in ranks or [4, 3, 2, 1]:
                part = searcher.search(query(tantivy.Query.term_query(self.schema, "priority_rank", rank)),
                                       max(PAGE - len(hits), 1), count=True, order_by_field="created_at",
                                       order=tantivy.Order.Desc)
                hits += part.hits[:PAGE - len(hits)]
                total += part.count
            return Result(searcher.fast_field_values("ticket_id", [a for _, a in hits]) if hits else [], total)
        else:
            raise ValueError(sort)
        addresses = [address for _, address in found.hits]
        return Result(searcher.fast_field_values("ticket_id", addresses) if addresses else [], found.count)

    def _newest_first(self, searcher: tantivy.Searcher, tsquery: str, agent: bool, query: Any,
                      ranked: bool) -> Result:
        """The newest matches needed (ranked: ``RANK_WINDOW``, then ranked by BM25 — PostgreSQL's
        "relevance within recency"; by createdAt: the page). Words in at most ``EXACT_MATCHES``
        documents: every match is visited, the total is exact. More: a recent window of the
        account's tickets sized by the bound to hold ``WINDOW_SPARE`` times the matches needed,
        resized by the rate it showed until it holds them; the total is extrapolated from the
        window's share of the account's tickets (an estimate, flagged, as PostgreSQL's slice)."""
        needed = RANK_WINDOW if ranked else PAGE
        bound = self.bound(searcher, tsquery, agent)
        found, estimated, total = None, False, 0
        window = WINDOW_SPARE * needed * self.tickets / max(bound, 1)
        while bound > EXACT_MATCHES and window < self.tickets / 2:
            since = self.newest_us - int(window / self.tickets * self.span_us)
            recent = tantivy.Query.range_query(self.schema, "created_at", tantivy.FieldType.Integer, since, None)
            part = searcher.search(query(recent), needed, count=True, order_by_field="created_at",
                                   order=tantivy.Order.Desc)
            if part.count >= needed:
                in_window = searcher.search(tantivy.Query.boolean_query([
                    (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "account_id", self.account_id)),
                    (tantivy.Occur.Must, recent)]), 1, count=True).count
                found, estimated = part, True
                total = max(part.count, int(part.count * self.tickets / max(in_window, 1)))
                break
            window = window * WINDOW_SPARE * needed / max(part.count, needed / 8)
        if found is None:
            found = searcher.search(query(), needed, count=True, order_by_field="created_at", order=tantivy.Order.Desc)
            total = found.count
        ids = searcher.fast_field_values("ticket_id", [a for _, a in found.hits]) if found.hits else []
        if ranked and ids:
            chosen = tantivy.Query.const_score_query(tantivy.Query.term_set_query(self.schema, "ticket_id", ids), 0.0)
            scored = searcher.search(tantivy.Query.boolean_query([
                (tantivy.Occur.Must, self.words(tsquery, agent, ranked=True)), (tantivy.Occur.Must, chosen)]), PAGE)
            ids = searcher.fast_field_values("ticket_id", [a for _, a in scored.hits])
        return Result(ids[:PAGE], total, estimated)


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
    from sqlalchemy import select, text

    from pulse.db import make_engine, make_sessionmaker
    from pulse.domain.ticket_query import parse_ticket_query
    from pulse.models import Ticket
    from pulse.repositories.ticket_lists import TicketLists

    db = make_engine(url, pool_size=1)
    sessions = make_sessionmaker(db)
    async with db.connect() as connection:  # the connection touches the tickets' buffers once (search.py)
        await connection.execute(text("SET max_parallel_workers_per_gather = 0"))
        await connection.execute(text("SELECT sum(length(subject)) FROM tickets"))
        await connection.execute(text("RESET max_parallel_workers_per_gather"))
    engine = Engine(open_index(Path(index_path)), account_id, prefix_terms=True, windows=which == "tantivy") \
        if which.startswith("tantivy") else None

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
            if result.ids:
                rows = {t.id: t for t in await session.scalars(select(Ticket).where(Ticket.id.in_(result.ids)))}
                await lists._snippets(result.ids, query, sample.agent)
                assert len(rows) == len(result.ids)
            sample.engine_ms = (searched - started) * 1000
            sample.page_ms = (time.perf_counter() - started) * 1000
            sample.ids, sample.total, sample.estimated = result.ids, result.total, result.estimated

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


ENGINES = (("tantivy", "engine_ms", "tantivy"), ("tantivy-all", "engine_ms", "tantivy, every match visited"),
           ("tantivy", "page_ms", "tantivy + rows"), ("postgres", "engine_ms", "PostgreSQL"))


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
    for key in ("tantivy 1", "tantivy-all 1", "postgres 1"):
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
                writer.delete_documents_by_term("ticket_id", ticket_id)
            else:
                ticket_id = 2_000_000_000 + n
                written.append(ticket_id)
            n += 1
            text = f"{FRESH_MARK} " + " ".join(rng.choices(words, k=60))
            stamp = time.time_ns()
            writer.add_document(make_document(ticket_id, FRESH_ACCOUNT, stamp // 1000, stamp // 1000, "open", 2,
                                              text, "", written_at=stamp, stemmer=stemmer))
            next_write += 1 / rate
        time.sleep(max(0.0, min(next_write, next_commit) - time.monotonic()))
    writer.commit()
    writer.delete_documents_by_term("account_id", FRESH_ACCOUNT)
    writer.commit()
    writer.wait_merging_threads()
    return {"commits": commits, "documents": [float(n)]}


def _reader_process(index_path: str, account_id: int, samples: list[Timed], reload_ms: int, seconds: float,
                    start_at: float) -> dict[str, list[float]]:
    index = open_index(Path(index_path))
    index.config_reader(reload_policy="Manual")
    engine = Engine(index, account_id, prefix_terms=True, windows=True)
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
            hits = searcher.search(mark, 1000, count=False, order_by_field="written_at", order=tantivy.Order.Desc).hits
            now = time.time_ns()
            stamps = [stamp for stamp, _ in hits if stamp > seen_until]
            visible += [(now - stamp) / 1e6 for stamp in stamps]
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
    parser.add_argument("--database", default=search.DATABASE)
    args = parser.parse_args()
    search.DATABASE = args.database
    server = search.start_embedded(args.embedded) if args.embedded else None
    try:
        url = search.database_url()
        print(f"machine: {os.cpu_count()} CPUs, load {search.load()}; tantivy {tantivy.__version__ if hasattr(tantivy, '__version__') else '0.27'}")
        if args.rebuild or not (args.index / "meta.json").exists():
            log(f"building the index at {args.index} …")
            for name, value in build(url, args.index).items():
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
        for clients, seed in ((1, args.seed), (4, args.seed + 1)):
            for which in ("tantivy", "tantivy-all", "postgres"):
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
