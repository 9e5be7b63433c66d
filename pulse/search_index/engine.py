"""The API's search on the index: which ids make a page, and the total.

``IndexSearcher.find`` answers a search whose every condition the index holds — the words
(ANDed, ``or`` groups, ``-word``, ``"phrases"``, the last word a prefix), ``status`` and
``priority`` filters — in an order it holds: ranked (the newest ``RANK_WINDOW`` matches, which
PostgreSQL then ranks as it always does), newest first, last updated first, or highest priority
first. Anything else (a ``PULSE-n`` search, tags, assignees, custom fields, dates, other orders,
pages past ``MAX_NEEDED``) is ``None``: PostgreSQL answers it.

Newest first (ranked or by createdAt), words expected in more than ``EXACT_MATCHES`` documents
(the least frequent word's count, or less if the words were independent) are looked for in a
recent window of the account's tickets first, sized to hold ``WINDOW_SPARE`` times the matches
needed and grown by the rate it showed; the total is then extrapolated from the window's share of
the account's tickets and flagged as an estimate, as PostgreSQL's slice is. Otherwise every match
is visited and counted exactly. (A window is a range over the ``created_at`` column: its cost grows
with the index, while few matches of words each in many documents are found faster by
intersecting their posting lists: at ten times the data, three such words took 0.5 s through
windows.)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tantivy

from pulse.domain.search import MIN_PREFIX_LENGTH
from pulse.domain.ticket_query import TicketQuery
from pulse.domain.tickets import PRIORITY_SEVERITY, Priority
from pulse.search_index.documents import MAX_PREFIXED, analyzer, is_current, open_index

RANK_WINDOW = 100  # pulse.repositories.ticket_lists.RANK_WINDOW: ranked pages rank the newest 100 matches
MAX_NEEDED = 1_000  # deeper pages are PostgreSQL's
EXACT_MATCHES = 20_000  # words in at most this many documents: every match is visited
WINDOW_SPARE = 4
ACCOUNT_SPAN_TTL = 30.0  # s: an account's size and time span, for sizing windows
OPERAND = re.compile(r"(!?)'((?:[^']|'')*)'(:\*)?")
RANKED, CREATED, UPDATED, PRIORITY = "ranked", "created_at", "updated_at", "priority"
PRIORITY_RANKS = sorted(PRIORITY_SEVERITY.values(), reverse=True)


@dataclass(frozen=True)
class Found:
    """The first ``needed`` matches' ticket ids in the page's order (ranked: the newest, by
    createdAt), and how many match in all (``estimated``: extrapolated from a recent window)."""

    ids: list[int]
    total: int
    estimated: bool = False


def order_of(query: TicketQuery) -> str | None:
    """The index's order for ``query``'s sort, None if it has none."""
    if not query.sort:
        return RANKED
    if len(query.sort) == 1 and query.sort[0].descending:
        return {"created_at": CREATED, "updated_at": UPDATED, "priority_rank": PRIORITY}.get(query.sort[0].column)
    return None


def needed_for(query: TicketQuery, order: str) -> int:
    """Matches a page needs in the index's order: ranked, the newest ``RANK_WINDOW`` (or down to it)."""
    reach = query.offset + query.page_size
    return max(RANK_WINDOW, reach) if order == RANKED else reach


def servable(query: TicketQuery) -> bool:
    """Every condition of ``query`` is one the index holds, in an order it holds."""
    if query.search_query is None or query.search_ticket_number is not None or query.page_size <= 0:
        return False
    if query.ranges or query.tags_all or query.tags_any or query.unassigned is not None or query.custom_fields:
        return False
    known = {p.value for p in Priority}
    for field_filter in query.equals:
        if field_filter.column == "priority" and set(field_filter.values) <= known:
            continue
        if field_filter.column != "status":
            return False
    order = order_of(query)
    return order is not None and needed_for(query, order) <= MAX_NEEDED


@dataclass
class _AccountSpan:
    tickets: int
    newest_us: int
    span_us: int
    read_at: float


class IndexSearcher:
    """Searches one index (its current searcher: ``reload`` after the indexer commits)."""

    def __init__(self, index: tantivy.Index) -> None:
        self.index = index
        self.schema = index.schema
        self.analyzer = analyzer()
        self._spans: dict[int, _AccountSpan] = {}

    def reload(self) -> None:
        self.index.reload()

    # -- words -----------------------------------------------------------------------------------

    def _word(self, text: str, prefix: bool, fields: list[str]) -> tantivy.Query | None:
        """One ``to_tsquery`` operand: its stems in one of ``fields`` (several: a phrase), the last
        stem a prefix when ``prefix``. None when it is only stop words (PostgreSQL drops it too)."""
        stems = self.analyzer.analyze(text)
        if not stems:
            return None
        per_field = []
        for name in fields:
            if len(stems) == 1 and prefix and MIN_PREFIX_LENGTH <= len(stems[0]) <= MAX_PREFIXED:
                per_field.append(tantivy.Query.term_query(self.schema, f"{name}_prefixes", stems[0]))
            elif len(stems) == 1 and prefix:
                per_field.append(tantivy.Query.regex_query(self.schema, name, re.escape(stems[0]) + ".*"))
            elif len(stems) == 1:
                per_field.append(tantivy.Query.term_query(self.schema, name, stems[0]))
            else:
                per_field.append(tantivy.Query.phrase_query(self.schema, name, stems))
        if len(per_field) == 1:
            return per_field[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in per_field])

    def words(self, tsquery: str, include_internal: bool) -> tantivy.Query | None:
        """The ``to_tsquery`` text ``pulse.domain.search`` builds (``&``, ``|``, ``!``, quoted
        operands, ``:*``) over the public text, and the internal notes for ``include_internal``."""
        fields = ["public", "notes"] if include_internal else ["public"]
        groups = []
        for part in tsquery.split(" | "):
            clauses = []
            for negated, quoted, star in OPERAND.findall(part):
                query = self._word(quoted.replace("''", "'"), bool(star), fields)
                if query is not None:
                    clauses.append((tantivy.Occur.MustNot if negated else tantivy.Occur.Must, query))
            if any(occur == tantivy.Occur.Must for occur, _ in clauses):
                groups.append(tantivy.Query.boolean_query(clauses))
        if not groups:
            return None
        return groups[0] if len(groups) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, g) for g in groups])

    def expected(self, searcher: tantivy.Searcher, tsquery: str, include_internal: bool) -> int:
        """How many documents the words may match, from the term dictionary: the smallest document
        frequency among the operands every match must hold, and below it the number expected if
        the words occurred independently (the index's size when no operand must hold)."""
        fields = ["public", "notes"] if include_internal else ["public"]
        parts = tsquery.split(" | ")
        documents = max(searcher.num_docs, 1)
        if len(parts) > 1:
            return documents
        least, independent = documents, float(documents)
        for negated, quoted, star in OPERAND.findall(parts[0]):
            stems = self.analyzer.analyze(quoted.replace("''", "'"))
            if negated or not stems:
                continue
            if star and not (len(stems) == 1 and MIN_PREFIX_LENGTH <= len(stems[0]) <= MAX_PREFIXED):
                continue
            suffix = "_prefixes" if star else ""
            frequency = min(sum(searcher.doc_freq(f"{name}{suffix}", stem) for name in fields) for stem in stems)
            least = min(least, frequency)
            independent *= frequency / documents
        return min(least, int(independent))

    # -- pages -----------------------------------------------------------------------------------

    def find(self, account_id: int, query: TicketQuery, include_internal: bool, *,
             excluded: list[int] | None = None) -> Found:
        """The matches a page of ``query`` needs (``servable(query)`` must hold), leaving out
        ``excluded`` tickets (changed since they were indexed: the caller checks them itself)."""
        assert query.search_query is not None
        order = order_of(query)
        assert order is not None
        needed = needed_for(query, order)
        searcher = self.index.searcher()
        tsquery = query.search_query.every_weight
        words = self.words(tsquery, include_internal)
        if words is None:
            return Found([], 0)
        filters = [tantivy.Query.term_query(self.schema, "account_id", account_id)]
        ranks: list[int] = []
        for field_filter in query.equals:
            if field_filter.column == "status":
                filters.append(tantivy.Query.term_set_query(self.schema, "status", list(field_filter.values)))
            else:
                ranks = sorted({PRIORITY_SEVERITY[Priority(v)] for v in field_filter.values}, reverse=True)
                filters.append(tantivy.Query.term_set_query(self.schema, "priority_rank", ranks))

        left_out = ([(tantivy.Occur.MustNot, tantivy.Query.term_set_query(self.schema, "ticket_id", excluded))]
                    if excluded else [])

        def restricted(*extra: tantivy.Query) -> tantivy.Query:
            restrict = tantivy.Query.const_score_query(
                tantivy.Query.boolean_query([(tantivy.Occur.Must, f) for f in [*filters, *extra]] + left_out), 0.0)
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, words), (tantivy.Occur.Must, restrict)])

        if order in (RANKED, CREATED):
            return self._newest_first(searcher, account_id, tsquery, include_internal, restricted, needed)
        if order == UPDATED:
            found = searcher.search(restricted(), needed, count=True, order_by_field="updated_at",
                                    order=tantivy.Order.Desc)
            return Found(self._ids(searcher, found.hits), found.count)
        hits: list[tuple[int, tantivy.DocAddress]] = []  # PRIORITY: highest first, then newest
        total = 0
        for rank in ranks or PRIORITY_RANKS:
            part = searcher.search(restricted(tantivy.Query.term_query(self.schema, "priority_rank", rank)),
                                   max(needed - len(hits), 1), count=True, order_by_field="created_at",
                                   order=tantivy.Order.Desc)
            hits += part.hits[:needed - len(hits)]
            total += part.count
        return Found(self._ids(searcher, hits), total)

    @staticmethod
    def _ids(searcher: tantivy.Searcher, hits: list[tuple[int, tantivy.DocAddress]]) -> list[int]:
        return searcher.fast_field_values("ticket_id", [address for _, address in hits]) if hits else []

    def _span(self, searcher: tantivy.Searcher, account_id: int) -> _AccountSpan:
        """The account's number of tickets and their time span (cached ``ACCOUNT_SPAN_TTL``)."""
        span = self._spans.get(account_id)
        if span is None or time.monotonic() - span.read_at > ACCOUNT_SPAN_TTL:
            account = tantivy.Query.term_query(self.schema, "account_id", account_id)
            newest = searcher.search(account, 1, count=True, order_by_field="created_at", order=tantivy.Order.Desc)
            oldest = searcher.search(account, 1, count=False, order_by_field="created_at", order=tantivy.Order.Asc)
            newest_us = newest.hits[0][0] if newest.hits else 0
            span = _AccountSpan(max(newest.count, 1), newest_us,
                                max(newest_us - (oldest.hits[0][0] if oldest.hits else 0), 1), time.monotonic())
            self._spans[account_id] = span
        return span

    def _newest_first(self, searcher: tantivy.Searcher, account_id: int, tsquery: str, include_internal: bool,
                      restricted: Callable[..., tantivy.Query], needed: int) -> Found:
        expected = self.expected(searcher, tsquery, include_internal)
        if expected > EXACT_MATCHES:
            span = self._span(searcher, account_id)
            window = WINDOW_SPARE * needed * span.tickets / max(expected, 1)
            while window < span.tickets / 2:
                since = span.newest_us - int(window / span.tickets * span.span_us)
                recent = tantivy.Query.range_query(self.schema, "created_at", tantivy.FieldType.Integer, since, None)
                part = searcher.search(restricted(recent), needed, count=True, order_by_field="created_at",
                                       order=tantivy.Order.Desc)
                if part.count >= needed:
                    in_window = searcher.search(tantivy.Query.boolean_query([
                        (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "account_id", account_id)),
                        (tantivy.Occur.Must, recent)]), 1, count=True).count
                    total = max(part.count, int(part.count * span.tickets / max(in_window, 1)))
                    return Found(self._ids(searcher, part.hits), total, estimated=total > part.count)
                window = window * WINDOW_SPARE * needed / max(part.count, needed / 8)
        found = searcher.search(restricted(), needed, count=True, order_by_field="created_at", order=tantivy.Order.Desc)
        return Found(self._ids(searcher, found.hits), found.count)


class SearchIndexReader:
    """An API process's view of the index: opened when this database's index is there, and
    reloaded when the indexer has committed since (``generation``) or ``RELOAD_AT_LEAST_S`` has
    passed (segments merged in the background: fewer to search)."""

    RELOAD_AT_LEAST_S = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._searcher: IndexSearcher | None = None
        self._index_id: str | None = None
        self._generation = -1
        self._reloaded_at = 0.0

    def searcher(self, index_id: str, generation: int) -> IndexSearcher | None:
        if self._index_id != index_id:
            if not is_current(self.path, index_id):
                return None
            try:
                index = open_index(self.path)
            except ValueError:  # being created
                return None
            index.config_reader(reload_policy="Manual")
            self._searcher, self._index_id, self._generation = IndexSearcher(index), index_id, -1
        assert self._searcher is not None
        now = time.monotonic()
        if generation > self._generation or now - self._reloaded_at > self.RELOAD_AT_LEAST_S:
            if not is_current(self.path, index_id):  # being rebuilt (a new schema): PostgreSQL meanwhile
                self._searcher, self._index_id = None, None
                return None
            self._searcher.reload()  # ~0.4 ms
            self._generation, self._reloaded_at = generation, now
        return self._searcher
