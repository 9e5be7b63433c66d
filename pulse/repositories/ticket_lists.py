"""Ticket lists at scale: filters, sorts, full-text search, counts, and the search index.

Queries per ``TicketLists.page`` call:

- plain list: 1 ``EXPLAIN`` (planning only), then 1 statement. Expected within ``COUNT_CAP``
  tickets: the matches' sort keys and ids are read once (a MATERIALIZED CTE; most indexes cover
  them, so mostly an index-only scan), the page is cut from them and their number is the exact
  total. Beyond it: the page in index order (migration 0002 and later), its total the estimate.
- search: 2 ``EXPLAIN``s first (the words alone, the account's tickets) — the GIN index works
  in proportion to the tickets containing the words (for a prefix, any word with it), whatever
  the other filters. Newest first (ranked, or by createdAt) and up to ``SLICE_MATCHES``: 0–3 more
  ``EXPLAIN``s (the matches and the filtered tickets when there are other filters; the prefix
  alone when the GIN scan's cost can tip the choice), then the cheapest way by the costs
  measured at a million tickets (``cheapest_way``): read every match once (a MATERIALIZED
  CTE, so the planner cannot prefer walking a btree and testing every row), cut the page from
  them and count them — exact total; test the newest tickets one by one and stop at the last
  match needed (dense matches: correlated words, short prefixes, whose GIN scans cost the most);
  or 1 probe of the newest id and the same statement restricted to a recent slice of ids (a
  BitmapAnd visits only the matches in the slice; a second slice if needed). Another order:
  few matches (≤ ``EXACT_MATCHES``) are read once, many are found by walking the index of the
  requested order, stopping early. Then 1 query for the snippets of the page's tickets; a
  ``PULSE-n`` query adds 1 indexed lookup. Measured at 1,000,000 tickets: bench/README.md.

Ranking (search without an explicit sort): the newest ``RANK_WINDOW`` matches (or
``offset + page size`` if deeper) are ranked with ``ts_rank_cd``; ranking every match of a
word found in most tickets costs seconds at a million tickets, and for such words recency is
the better tiebreaker anyway. List totals above ``COUNT_CAP`` and search totals beyond the few
path are estimates (the planner's, or extrapolated from the slice), flagged
``totalIsEstimate``, for the same reason.

Everything is parameterised; the only SQL text built here is constant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    bindparam,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal

from pulse.domain.ticket_query import TicketQuery, custom_field_values
from pulse.domain.tickets import PRIORITY_SEVERITY, Priority
from pulse.models import Ticket, TicketComment

SEARCH_CONFIG = literal_column("'english'::regconfig")
RANK_WINDOW = 100
COUNT_CAP = 10_000
# Searches whose words the planner expects in at most this many tickets read every match through
# the GIN index and count them exactly — in another order than newest first always, newest first
# unless testing the newest tickets is cheaper. (A prefix none of whose words the statistics
# track is guessed at a fixed fraction: 0.5 % at a million tickets, 5,000, so such guesses read the
# matches too; 2 % while fewer than 100 lexemes are tracked. Migration 0006 tracks the 10,000 most
# common lexemes, which makes most guesses far better.)
EXACT_MATCHES = 5_000
PREFIX_GUESS_MARGIN = 0.0055  # just above PostgreSQL's default selectivity of a tsquery it cannot see into
# Newest first, up to this many matches the cheapest way is chosen (``cheapest_way``). Beyond
# it (a word in more than ~5 % of the tickets) walking the newest-first index and testing each
# ticket finds RANK_WINDOW matches within a few thousand rows.
SLICE_MATCHES = 50_000
# Reading all matches stops past this many (the estimate was far off): the page is then walked for.
MATCHES_READ_CAP = 20_000
# A slice is sized to hold this many times the matches needed (by the estimate): each slice costs
# a GIN scan of the words, while a match in it costs only a heap visit.
SLICE_SPARE = 10
# A walk of the newest tickets tests 1.5× those expected to hold the matches needed, at most this
# many (≈ 50 ms); if they held too few, the rate they showed chooses between reading every match
# and a slice.
WALK_PROBE = 20_000
# Newest first, the cheapest of reading every match, testing the newest tickets and a recent slice
# is chosen by these costs (µs, measured at 1,000,000 tickets, bench/README.md): a match read
# through the GIN bitmap (one heap visit, its share of the count and sort); a document holding the
# last word's prefix (GIN unites the posting lists of every word with that prefix before it
# intersects them with the other words': 10–35 ms for a three-letter prefix); a ticket tested one
# by one (an index entry, the row and its TOASTed document); a ticket in a slice (its id in the
# bitmap of the id range).
MATCH_READ_US = 2.0
PREFIX_POSTING_US = 0.3
TICKET_TEST_US = 2.5
SLICE_TICKET_US = 0.045
READ, WALK, SLICE = "read", "walk", "slice"  # the ways to a newest-first page
SNIPPET_SOURCE_CHARS = 8_000
SNIPPET_COMMENTS = 10  # a snippet from comments looks at the first ten visible ones
HEADLINE_OPTIONS = (
    'StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "'
)
# ts_rank_cd weights for {D (internal notes), C (comments), B (description), A (subject)}.
RANK_WEIGHTS = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")
RANK_NORMALISATION = 1  # divide by 1 + log(document length): long threads do not win by size alone


@dataclass
class TicketPage:
    tickets: list[Ticket]
    total: int
    total_is_estimate: bool = False
    snippets: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _NewestFirst:
    """How a newest-first search page is found (``READ``, ``WALK`` or ``SLICE``), and the
    planner's estimates of the tickets passing every condition and passing the filters alone."""

    way: str
    matches: int
    filtered: int


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON) <statement>`` with the statement's own bound parameters. Cached as
    the statement is (its SQL compiled once per shape: ~0.4 ms of CPU saved per estimate)."""

    inherit_cache = True
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]
    _all_selected_columns: tuple[Any, ...] = ()  # the plan's one column is matched by position

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _newest_first(query: TicketQuery) -> bool:
    """Ranked (no sort: the newest matches are ranked) or sorted newest first."""
    return not query.sort or [(key.column, key.descending) for key in query.sort] == [("created_at", True)]


def cheapest_way(*, word_matches: int, matches: int, filtered: int, tickets: int, needed: int,
                 prefix_postings: int = 0, candidates: int | None = None) -> str:
    """``READ``, ``WALK`` or ``SLICE``: the cheapest way to the ``needed`` newest matches by the
    costs above, given the planner's estimates of the live tickets holding the words, passing every
    condition, passing the filters alone, all of them, and holding the last word's prefix.
    ``candidates``: the prefix is not scanned but checked on the tickets holding the other words
    (this many: each read and its document tested). Reading every match is preferred up to
    ``EXACT_MATCHES`` (an exact total) unless walking is cheaper."""
    matches = max(matches, 1)
    if candidates is None:
        gin, read_each, read = PREFIX_POSTING_US * prefix_postings, MATCH_READ_US, word_matches
    else:
        gin, read_each, read = 0.0, MATCH_READ_US + TICKET_TEST_US, max(candidates, word_matches)
    # Reading and slicing scan the GIN index; walking does not. GIN visits every ticket holding the
    # words and the filters are tested on each; reading stops (and the page is walked for) past
    # MATCHES_READ_CAP tickets passing them all.
    reading = gin + read_each * read if matches <= MATCHES_READ_CAP else float("inf")
    slicing = gin + (SLICE_TICKET_US * tickets / matches + read_each * read / max(word_matches, 1)) \
        * SLICE_SPARE * needed
    walked = needed * filtered / matches  # tickets tested before the last match needed
    walking = TICKET_TEST_US * min(walked, WALK_PROBE)
    if walked > WALK_PROBE:
        walking += min(reading, slicing)  # the walk stops at WALK_PROBE, and likely another way follows
    if word_matches <= EXACT_MATCHES and reading <= walking:
        return READ
    costs = {READ: reading, SLICE: slicing, WALK: walking}
    return min(costs, key=costs.__getitem__)


def _needed(query: TicketQuery, offset: int, limit: int) -> int:
    """Matches a page needs, newest first: ranked, the ``RANK_WINDOW`` newest (or down to the page)."""
    return max(RANK_WINDOW, offset + limit) if not query.sort else offset + limit


def _escape_html(expression: Any) -> Any:
    return func.replace(func.replace(func.replace(expression, "&", "&amp;"), "<", "&lt;"), ">", "&gt;")


class TicketLists:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- conditions ------------------------------------------------------------------------------

    def conditions(self, account_id: int, query: TicketQuery) -> list[ColumnElement[bool]]:
        """Every filter of ``query`` except search, as SQL conditions."""
        conditions: list[ColumnElement[bool]] = [Ticket.account_id == account_id, Ticket.deleted_at.is_(None)]
        known_priorities = {priority.value for priority in Priority}
        for field_filter in query.equals:
            column = getattr(Ticket, field_filter.column)
            values = field_filter.values
            if field_filter.column == "priority" and set(values) <= known_priorities:
                # By severity, which the indexes ordered by priority begin with: a walk in priority
                # order starts at the first ``high`` ticket instead of testing every ``urgent`` one
                # (a common word among high tickets by priority: 314 → 3 ms). Instead of, not beside,
                # the priority itself: the planner would take the two for independent conditions
                # and estimate a third of the tickets (a deep page's plan went from 70 to 500 ms).
                column, values = Ticket.priority_rank, sorted({PRIORITY_SEVERITY[Priority(v)] for v in values})
            if len(values) == 1:
                conditions.append(column == values[0])
            else:
                conditions.append(column.in_(values))
        for range_filter in query.ranges:
            column = getattr(Ticket, range_filter.column)
            if range_filter.after is not None:
                conditions.append(column >= range_filter.after)
            if range_filter.before is not None:
                conditions.append(column < range_filter.before)
        if query.tags_all:
            conditions.append(Ticket.tags.contains(query.tags_all))
        if query.tags_any:
            conditions.append(Ticket.tags.overlap(query.tags_any))
        if query.unassigned is True:
            conditions.append(and_(Ticket.assigned_to_user_id.is_(None), Ticket.assigned_to_team_id.is_(None)))
        elif query.unassigned is False:
            conditions.append(or_(Ticket.assigned_to_user_id.is_not(None), Ticket.assigned_to_team_id.is_not(None)))
        for key, raw in query.custom_fields.items():
            # jsonb @> {key: value} for each spelling of the value: every branch uses the GIN index.
            branches = [
                Ticket.custom_fields.contains(type_coerce({key: value}, JSONB)) for value in custom_field_values(raw)
            ]
            conditions.append(or_(*branches) if len(branches) > 1 else branches[0])
        return conditions

    @staticmethod
    def tsquery(query: TicketQuery) -> Any:
        assert query.search_query is not None
        return func.to_tsquery(SEARCH_CONFIG, query.search_query.every_weight)

    @staticmethod
    def document(include_internal: bool, source: Any = Ticket) -> Any:
        """The document a caller searches: with internal notes (writeSupport) or public only."""
        return source.search_vector if include_internal else source.search_public

    def text_match(self, query: TicketQuery, include_internal: bool) -> ColumnElement[bool]:
        if query.search_query is None:
            return false()
        return self.document(include_internal).bool_op("@@")(self.tsquery(query))

    def matching(self, account_id: int, query: TicketQuery, include_internal: bool) -> list[ColumnElement[bool]]:
        """All conditions, search included (a ``PULSE-n`` search also matches that ticket)."""
        conditions = self.conditions(account_id, query)
        if query.search is not None:
            match = self.text_match(query, include_internal)
            if query.search_ticket_number is not None:
                match = or_(match, Ticket.number == query.search_ticket_number)
            conditions.append(match)
        return conditions

    # -- ordering --------------------------------------------------------------------------------

    @staticmethod
    def order_keys(query: TicketQuery) -> list[tuple[str, bool]]:
        """(column, descending): the requested keys, then the tie-breakers in the last key's
        direction — ``created_at`` (after a key with few distinct values: status, priority …)
        and ``id`` — a stable order whose shape matches the indexes: (…, priority_rank DESC,
        created_at DESC, id DESC) and (account_id, updated_at DESC, id DESC)."""
        keys: list[tuple[str, bool]] = []
        descending = True
        for key in query.sort:
            if key.column not in (name for name, _ in keys):
                keys.append((key.column, key.descending))
                descending = key.descending
        tie_breakers = ["created_at", "id"]
        if keys and isinstance(Ticket.__table__.c[keys[-1][0]].type, DateTime):
            tie_breakers = ["id"]  # a timestamp rarely ties: id alone keeps it stable
        for name in tie_breakers:
            if name not in (column for column, _ in keys):
                keys.append((name, descending))
        return keys

    @staticmethod
    def _order(keys: list[tuple[str, bool]], source: Any) -> list[Any]:
        """ORDER BY terms over ``source`` (the Ticket entity or a subquery's columns). Nullable
        columns sort nulls last either way; NOT NULL ones get a plain ASC/DESC an index can serve."""
        order = []
        for name, descending in keys:
            column = getattr(source, name) if source is Ticket else source[name]
            term = column.desc() if descending else column.asc()
            if descending and Ticket.__table__.c[name].nullable:
                term = term.nulls_last()
            order.append(term)
        return order

    def order_by(self, query: TicketQuery) -> list[Any]:
        return self._order(self.order_keys(query), Ticket)

    # -- pages -----------------------------------------------------------------------------------

    async def page(self, account_id: int, query: TicketQuery, *, include_internal: bool = False) -> TicketPage:
        offset, limit = query.offset, query.page_size
        exact: Ticket | None = None
        conditions = self.conditions(account_id, query)
        filters = list(conditions)  # without the words
        searching = query.search is not None
        if searching:
            if query.search_ticket_number is not None:
                # ``PULSE-n``: that ticket first, then whatever else mentions it.
                exact = await self.session.scalar(
                    select(Ticket).where(*conditions, Ticket.number == query.search_ticket_number)
                )
            if query.search_query is None:  # nothing searchable (only stop words or punctuation)
                shown = [exact] if exact is not None and query.page == 1 else []
                return TicketPage(tickets=shown, total=1 if exact is not None else 0)
            words = self.text_match(query, include_internal)
            conditions.append(words)
            if exact is not None:
                conditions.append(Ticket.id != exact.id)
                filters.append(Ticket.id != exact.id)
                if query.page == 1:
                    limit -= 1
                else:
                    offset -= 1

        rows: list[Ticket] = []
        counted: int | None = None  # a search's exact total, counted in the same pass as the page
        estimate: int | None = None
        few_matches = False
        newest: _NewestFirst | None = None  # how a newest-first search page is found
        read_conditions = conditions  # what reading the matches through the GIN index asks for
        prefix_postings: int | None = None
        candidates: int | None = None  # set when the prefix is checked on the other words' matches
        if searching:
            live = [Ticket.account_id == account_id, Ticket.deleted_at.is_(None)]
            assert query.search_query is not None
            if query.search_query.without_prefix is not None:
                # GIN unites the posting lists of every word with the last word's prefix before it
                # intersects them (0.3 µs a document: ~300 ms for `login:*`, in most tickets); the
                # other words' matches, each tested against the whole search, can cost far less.
                document = self.document(include_internal)
                prefix_postings = await self.estimate(
                    [*live, document.bool_op("@@")(func.to_tsquery(SEARCH_CONFIG, query.search_query.prefix))])
                others = document.bool_op("@@")(func.to_tsquery(SEARCH_CONFIG, query.search_query.without_prefix))
                candidates = await self.estimate([*live, others])
                if PREFIX_POSTING_US * prefix_postings > (MATCH_READ_US + TICKET_TEST_US) * candidates:
                    # ts_match_vq is @@ the index cannot serve: tested on each candidate.
                    checked = func.ts_match_vq(document, self.tsquery(query))
                    read_conditions = [*(c for c in conditions if c is not words), others, checked]
                else:
                    candidates = None
            # The GIN index does work in proportion to the tickets that contain the words (for a
            # prefix: any word with it), whatever the other filters. Newest first (ranked or by
            # createdAt), up to SLICE_MATCHES: the cheapest of reading every match, testing the newest
            # tickets and a recent slice (``cheapest_way``). Otherwise few (≤ EXACT_MATCHES):
            # collect them all once, count them, order just those; many: walk the index of the
            # requested order, stop at the page. A total is exact when every match was read.
            word_matches, tickets = await self.estimate([*live, words]), max(await self.estimate(live), 1)
            # A prefix guessed at the planner's fixed 0.5 % reads all matches too (see EXACT_MATCHES).
            few_matches = word_matches <= max(EXACT_MATCHES, PREFIX_GUESS_MARGIN * tickets)
            if limit > 0 and _newest_first(query) and word_matches <= SLICE_MATCHES:
                newest = await self._newest_first_plan(live, filters, conditions, query, include_internal,
                                                       word_matches, tickets, _needed(query, offset, limit),
                                                       prefix_postings, candidates)
                few_matches, estimate = newest.way == READ, newest.matches
            elif not few_matches:
                estimate = await self.estimate(conditions)
        elif limit > 0:
            # A list the planner expects within COUNT_CAP tickets is counted exactly: its matches
            # (their sort keys and ids, which most indexes cover) are read once, the page cut from
            # them and their number is the total — instead of the page, then its count reading
            # them again (tags sorted by priority: a GIN bitmap of 2,312 tickets sorted for the
            # page, then read again for the count). Beyond it the estimate is the total.
            estimate = await self.estimate(conditions)
            few_matches = estimate <= COUNT_CAP
        if limit > 0:
            walk = not few_matches  # walk the index of the requested order, testing each ticket
            if walk and newest is not None:
                recent = await self._from_recent_matches(filters, read_conditions, query, include_internal, offset,
                                                         limit, newest, tickets)
                if recent is None:  # not enough recent matches: they are few, or old
                    few_matches = True
                elif recent != WALK:
                    (rows, estimate), walk = recent, False
            if few_matches and not searching:
                rows, counted = await self._from_matches(conditions, query, include_internal, offset, limit,
                                                         cap=COUNT_CAP)
                walk = counted > COUNT_CAP  # more than estimated: the total is an estimate, as a count's
                if walk:
                    rows, counted, estimate = [], None, max(estimate or 0, counted)
            elif few_matches:
                rows, counted = await self._from_matches(read_conditions, query, include_internal, offset, limit)
                walk = counted is not None and counted > MATCHES_READ_CAP  # far more than estimated
                if walk:
                    rows, counted, estimate = [], None, counted
            if walk and searching and not query.sort:
                rows = await self._ranked(conditions, query, include_internal, offset, limit)
            elif walk:
                statement = select(Ticket).where(*conditions).order_by(*self.order_by(query))
                rows = list(await self.session.scalars(statement.limit(limit).offset(offset)))

        if limit > 0 and (0 < len(rows) < limit or (not rows and offset == 0)):
            total, estimated = offset + len(rows), False  # the page tells the total: no count
        elif counted is not None:
            total, estimated = counted, False
        elif estimate is not None and estimate > offset + len(rows):
            total, estimated = estimate, True  # counting a common word's matches costs as much as ranking them all
        else:
            total, estimated = await self.count(conditions, at_least=offset + len(rows))
        if exact is not None:
            total += 1

        shown = ([exact] if exact is not None and query.page == 1 else []) + rows
        snippets: dict[int, str] = {}
        if searching and shown:
            snippets = await self._snippets([t.id for t in shown], query, include_internal)
        return TicketPage(tickets=shown, total=total, total_is_estimate=estimated, snippets=snippets)

    async def page_of_found(self, account_id: int, query: TicketQuery, *, include_internal: bool, ids: list[int],
                            total: int, estimated: bool) -> TicketPage:
        """The page of a search whose matches were found elsewhere (``pulse.search_index``):
        ``ids`` hold the first matches in the page's order, in any order themselves — ranked, the
        newest of them are ranked here as ``page`` ranks them. 1 statement for the rows (the
        account and filters checked again), 1 for the snippets."""
        offset, limit = query.offset, query.page_size
        rows: list[Ticket] = []
        conditions = [*self.conditions(account_id, query), Ticket.id.in_(ids)]
        if ids and query.sort:
            statement = select(Ticket).where(*conditions).order_by(*self.order_by(query)).limit(limit).offset(offset)
            rows = list(await self.session.scalars(statement))
        elif ids:
            matches = (select(Ticket.created_at.label("created_at"), Ticket.id.label("id"))
                       .where(*conditions).cte("matches").prefix_with("MATERIALIZED"))
            rows, _ = await self._page_from(matches, [("created_at", True), ("id", True)], query, include_internal,
                                            offset, limit)
        if 0 < len(rows) < limit or (not rows and offset == 0):
            total, estimated = offset + len(rows), False
        snippets = await self._snippets([t.id for t in rows], query, include_internal) if rows else {}
        return TicketPage(tickets=rows, total=total, total_is_estimate=estimated, snippets=snippets)

    async def ids_matching_among(self, account_id: int, query: TicketQuery, include_internal: bool,
                                 ticket_ids: list[int]) -> list[int]:
        """Which of ``ticket_ids`` match the whole search (1 query by primary key; none: 0)."""
        if not ticket_ids:
            return []
        conditions = [*self.conditions(account_id, query), self.text_match(query, include_internal),
                      Ticket.id.in_(ticket_ids)]
        return list(await self.session.scalars(select(Ticket.id).where(*conditions)))

    def _rank(self, query: TicketQuery, include_internal: bool) -> Any:
        return func.ts_rank_cd(RANK_WEIGHTS, self.document(include_internal), self.tsquery(query), RANK_NORMALISATION)

    async def _newest_first_plan(self, live: list[ColumnElement[bool]], filters: list[ColumnElement[bool]],
                                 conditions: list[ColumnElement[bool]], query: TicketQuery, include_internal: bool,
                                 word_matches: int, tickets: int, needed: int, prefix_postings: int | None = None,
                                 candidates: int | None = None) -> _NewestFirst:
        """The cheapest way to the ``needed`` newest matches (``cheapest_way``). Planning only:
        the matches and the filtered tickets when there are filters besides the words, and the
        documents holding the last word's prefix when their number can change the way and is not
        known yet (0–3 estimates). ``candidates``: the prefix is checked on the other words'
        matches, this many, rather than scanned."""
        filtered_too = len(filters) > len(live)
        matches = max(await self.estimate(conditions), 1) if filtered_too else max(word_matches, 1)
        filtered = max(await self.estimate(filters), 1) if filtered_too else tickets
        assert query.search_query is not None
        prefix = query.search_query.prefix

        def way(postings: int) -> str:
            return cheapest_way(word_matches=word_matches, matches=matches, filtered=filtered, tickets=tickets,
                                needed=needed, prefix_postings=postings, candidates=candidates)

        if candidates is not None or prefix_postings is not None:
            return _NewestFirst(way(prefix_postings or 0), matches, filtered)
        chosen = way(0)
        if prefix is not None and way(tickets) != chosen:
            prefix_match = self.document(include_internal).bool_op("@@")(func.to_tsquery(SEARCH_CONFIG, prefix))
            chosen = way(await self.estimate([*live, prefix_match]))
        return _NewestFirst(chosen, matches, filtered)

    async def _from_recent_matches(self, filters: list[ColumnElement[bool]],
                                   conditions: list[ColumnElement[bool]], query: TicketQuery,
                                   include_internal: bool, offset: int, limit: int, plan: _NewestFirst,
                                   tickets: int) -> tuple[list[Ticket], int] | str | None:
        """The page from the newest matches, by ``plan``. ``WALK``: the newest tickets that pass
        ``filters`` (the conditions without the words), 1.5× as many as expected to hold the
        matches needed (at most ``WALK_PROBE``), each tested, stopping at the last match needed.
        Else, or when they held too few and the rate they showed says the matches are not few: a
        recent slice of the account's tickets (ids grow with creation) sized to hold
        ``SLICE_SPARE`` times the matches needed; resized by the rate it found if it held too few.
        The total is extrapolated (an estimate, flagged). None when the matches turn out few or
        old (reading them all is the better plan); ``WALK`` when they are far denser than
        estimated. Cost: the walk, or 1 index probe + 1–2 statements that visit only the matches
        in the slice."""
        needed = _needed(query, offset, limit)
        estimate, filtered = plan.matches, plan.filtered
        probe = min(int(1.5 * needed * filtered / estimate), WALK_PROBE)
        if plan.way == WALK:
            # Dense matches (correlated words, a short prefix) are under-estimated most, and their
            # GIN scans are the costliest: the newest tickets, tested one by one, settle it and
            # give the real rate.
            rows, found = await self._from_newest_tested(filters, query, include_internal, offset, limit, probe,
                                                         needed)
            if found >= needed:
                return rows, max(found, estimate)
            estimate = max(int(found * filtered / probe), 1)
            if estimate <= EXACT_MATCHES:
                return None  # few after all, or old: reading them all is cheap
        newest_id = await self.session.scalar(select(func.max(Ticket.id)))
        if newest_id is None:
            return None
        ids_per_ticket = max(1.0, newest_id / tickets)  # other accounts' tickets share the id sequence
        slice_tickets = SLICE_SPARE * needed * tickets / estimate
        for _ in range(2):
            if slice_tickets >= tickets:
                return None  # the slice would be everything
            lowest_id = int(newest_id - slice_tickets * ids_per_ticket)
            sliced = [*conditions, Ticket.id > lowest_id]
            rows, found = await self._from_matches(sliced, query, include_internal, offset, limit)
            expected = found * tickets / slice_tickets  # matches in all tickets, at the slice's rate
            if found > MATCHES_READ_CAP:
                return WALK  # far denser than estimated: the slice's matches were not all read
            if found >= needed:
                return rows, max(found, int(expected))
            if expected <= EXACT_MATCHES:
                return None  # few after all (the planner guessed high): reading them all is cheap
            slice_tickets = SLICE_SPARE * needed * slice_tickets / max(found, 1)  # sized by the slice's rate
        return None

    async def _ranked(self, conditions: list[ColumnElement[bool]], query: TicketQuery, include_internal: bool,
                      offset: int, limit: int) -> list[Ticket]:
        """Many matches: rank the newest ``RANK_WINDOW`` (found by walking the newest-first index;
        only id + created_at travel through it, the window's rows are then read by key)."""
        window = max(RANK_WINDOW, offset + limit)
        candidates = (
            select(Ticket.id.label("id"))
            .where(*conditions)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(window)
            .subquery("candidates")
        )
        rank = self._rank(query, include_internal)
        statement = (
            select(Ticket)
            .join(candidates, Ticket.id == candidates.c.id)
            .order_by(rank.desc(), Ticket.created_at.desc(), Ticket.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(await self.session.scalars(statement))

    async def _from_matches(self, conditions: list[ColumnElement[bool]], query: TicketQuery, include_internal: bool,
                            offset: int, limit: int, *, cap: int = MATCHES_READ_CAP) -> tuple[list[Ticket], int]:
        """Few matches: a MATERIALIZED CTE takes every match once (the planner reads the GIN
        index: no ORDER BY/LIMIT to tempt it into walking a btree and testing every row), then
        the page is cut from it — ranked (a search without a sort: the newest ``RANK_WINDOW``)
        or in the list's order — and its size is the exact total. One statement. It reads at most
        ``cap + 1`` matches: a total above it tells the caller the planner's estimate was far off
        (words that occur together far more often than independence predicts), and the page is to
        be found by walking an index instead."""
        keys = self.order_keys(query) if query.sort or query.search is None else [("created_at", True), ("id", True)]
        names = list(dict.fromkeys([name for name, _ in keys] + ["id"]))
        matches = (
            select(*[getattr(Ticket, name).label(name) for name in names])
            .where(*conditions)
            .limit(cap + 1)  # the planner's estimate can be far off: never read many more
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        return await self._page_from(matches, keys, query, include_internal, offset, limit)

    async def _from_newest_tested(self, filters: list[ColumnElement[bool]], query: TicketQuery,
                                  include_internal: bool, offset: int, limit: int, probe: int,
                                  needed: int) -> tuple[list[Ticket], int]:
        """The first ``needed`` matches among the newest ``probe`` tickets that pass ``filters``,
        each tested against the words (a walk of the newest-first index that stops at ``needed``
        matches: one heap visit and one document test per ticket, no GIN scan). The page is cut
        from them as in ``_from_matches``; their count (at most ``needed``) is returned."""
        newest = (
            select(Ticket.id.label("id"), Ticket.created_at.label("created_at"),
                   self.document(include_internal).label("document"))
            .where(*filters)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(probe)
            .subquery("newest_tickets")
        )
        matches = (
            select(newest.c.created_at, newest.c.id)
            .where(newest.c.document.bool_op("@@")(self.tsquery(query)))
            .order_by(newest.c.created_at.desc(), newest.c.id.desc())  # the walk's own order: no sort
            .limit(needed)
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        return await self._page_from(matches, [("created_at", True), ("id", True)], query, include_internal,
                                     offset, limit)

    async def _page_from(self, matches: Any, keys: list[tuple[str, bool]], query: TicketQuery, include_internal: bool,
                         offset: int, limit: int) -> tuple[list[Ticket], int]:
        """The page cut from a CTE of matches (ranked, or in ``keys`` order) and the CTE's size."""
        total = select(func.count()).select_from(matches).scalar_subquery().label("total")
        ranked = query.search is not None and not query.sort
        if not ranked:
            page = (
                select(matches.c.id)
                .order_by(*self._order(keys, matches.c))
                .limit(limit)
                .offset(offset)
                .subquery("page")
            )
            order = self.order_by(query)
        else:
            window = max(RANK_WINDOW, offset + limit)
            newest = (
                select(matches.c.id)
                .order_by(matches.c.created_at.desc(), matches.c.id.desc())
                .limit(window)
                .subquery("newest")
            )
            page = newest
            order = [self._rank(query, include_internal).desc(), Ticket.created_at.desc(), Ticket.id.desc()]
        statement = select(Ticket, total).join(page, Ticket.id == page.c.id).order_by(*order)
        if ranked:
            statement = statement.limit(limit).offset(offset)
        found = (await self.session.execute(statement)).all()
        if found:
            return [row[0] for row in found], int(found[0][1])
        if offset == 0:
            return [], 0
        # A page past the end: the matches are counted on their own (read once more; rare).
        return [], int(await self.session.scalar(select(func.count()).select_from(matches)) or 0)

    # -- counts ----------------------------------------------------------------------------------

    async def estimate(self, conditions: list[ColumnElement[bool]]) -> int:
        """The planner's row estimate for ``conditions`` (planning only, nothing is read)."""
        plan = (await self.session.execute(_Explain(select(literal(1)).where(*conditions)))).scalar_one()
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])

    async def count(self, conditions: list[ColumnElement[bool]], *, at_least: int = 0) -> tuple[int, bool]:
        """(total, is_estimate). Exact up to ``COUNT_CAP`` (or ``at_least``, for deep pages);
        above it the planner's estimate, because counting a million rows is not worth it."""
        cap = max(COUNT_CAP, at_least)
        estimate = await self.estimate(conditions)
        if estimate > cap:
            return max(estimate, at_least), True
        limited = select(literal(1)).where(*conditions).limit(cap + 1).subquery()
        exact = int(await self.session.scalar(select(func.count()).select_from(limited)) or 0)
        if exact > cap:
            return max(estimate, exact, at_least), True
        return exact, False

    async def ids_matching(self, account_id: int, query: TicketQuery, *, include_internal: bool,
                           limit: int) -> list[int]:
        """Ids of the tickets a filter matches (search included), by id, at most ``limit``."""
        statement = (
            select(Ticket.id).where(*self.matching(account_id, query, include_internal)).order_by(Ticket.id).limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def existing_ids(self, account_id: int, ticket_ids: list[int]) -> list[int]:
        """Which of these ids are live tickets of the account (1 query)."""
        if not ticket_ids:
            return []
        return list(await self.session.scalars(
            select(Ticket.id).where(Ticket.account_id == account_id, Ticket.deleted_at.is_(None),
                                    Ticket.id.in_(ticket_ids))
        ))

    # -- snippets --------------------------------------------------------------------------------

    async def _snippets(self, ticket_ids: list[int], query: TicketQuery, include_internal: bool) -> dict[int, str]:
        """``ts_headline`` of the text that matched, HTML-escaped with matches in <mark>: the
        subject or the description when the query matches there (told by the stored document's
        weights, no re-parsing), else subject + description + the first visible comments. One
        query for the page (a statement built once); a text is cut to ``SNIPPET_SOURCE_CHARS``."""
        assert query.search_query is not None
        search = query.search_query
        rows = await self.session.execute(
            _snippet_statement(include_internal),
            {"ids": ticket_ids, "every": search.every_weight, "subject_only": search.subject_only,
             "description_only": search.description_only},
        )
        return {ticket_id: text_ for ticket_id, text_ in rows}


@lru_cache(maxsize=2)
def _snippet_statement(include_internal: bool) -> Any:
    """The snippet query, with bind parameters ``ids``, ``every``, ``subject_only`` and
    ``description_only``; built once per kind of caller (building it costs more than running it)."""
    plain = func.to_tsquery(SEARCH_CONFIG, bindparam("every", type_=String))  # plain text carries no weights

    def headline(expression: Any) -> Any:
        source = _escape_html(func.left(func.coalesce(expression, ""), SNIPPET_SOURCE_CHARS))
        return func.ts_headline(SEARCH_CONFIG, source, plain, HEADLINE_OPTIONS)

    def matches_in(name: str) -> Any:
        return Ticket.search_vector.bool_op("@@")(func.to_tsquery(SEARCH_CONFIG, bindparam(name, type_=String)))

    comment_conditions = [TicketComment.ticket_id == Ticket.id]
    if not include_internal:
        comment_conditions.append(TicketComment.is_internal.is_(False))
    first_comments = (
        select(TicketComment.body, TicketComment.created_at, TicketComment.id)
        .where(*comment_conditions)
        .order_by(TicketComment.created_at, TicketComment.id)
        .limit(SNIPPET_COMMENTS)
        .correlate(Ticket)
        .subquery("first_comments")
    )
    comments_text = (
        select(func.string_agg(first_comments.c.body, aggregate_order_by(" — ", first_comments.c.created_at,
                                                                         first_comments.c.id)))
        .scalar_subquery()
    )
    snippet = case(
        (matches_in("subject_only"), headline(Ticket.subject)),
        (matches_in("description_only"), headline(Ticket.description)),
        else_=headline(func.concat_ws(" — ", Ticket.subject, Ticket.description, comments_text.correlate(Ticket))),
    )
    return select(Ticket.id, snippet).where(Ticket.id.in_(bindparam("ids", expanding=True)))


class TicketSearchIndex:
    """Keeps ``tickets.search_vector`` (everything) and ``search_public`` (no internal notes)
    current. Called inside the writing transaction."""

    REFRESH = text(
        """
        UPDATE tickets AS t
           SET search_vector = pulse_tsvector_append(head.document, comments.every),
               search_public = pulse_tsvector_append(head.document, comments.public)
          FROM (SELECT pulse_tsvector_append(pulse_search_part(subject, 'A'),
                                             pulse_search_part(description, 'B')) AS document
                  FROM tickets WHERE id = :ticket_id) AS head,
               (SELECT pulse_tsvector_agg(part ORDER BY created_at, id) AS every,
                       pulse_tsvector_agg(part ORDER BY created_at, id) FILTER (WHERE NOT is_internal) AS public
                  FROM (SELECT pulse_search_part(body, (CASE WHEN is_internal THEN 'D' ELSE 'C' END)::"char") AS part,
                               is_internal, created_at, id
                          FROM ticket_comments WHERE ticket_id = :ticket_id) AS parts) AS comments
         WHERE t.id = :ticket_id
        """
    )
    APPEND = text(
        """
        UPDATE tickets
           SET search_vector = pulse_tsvector_append(search_vector, comment.part),
               search_public = CASE WHEN :internal THEN search_public
                                    ELSE pulse_tsvector_append(search_public, comment.part) END
          FROM (SELECT pulse_search_part(:body, (CASE WHEN :internal THEN 'D' ELSE 'C' END)::"char") AS part) AS comment
         WHERE id = :ticket_id
        """
    )

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh(self, ticket_id: int) -> None:
        """Rebuild one ticket's documents from its subject, description and comments (1 UPDATE;
        each comment is parsed once for both)."""
        await self.session.execute(self.REFRESH, {"ticket_id": ticket_id})

    async def append_comment(self, ticket_id: int, body: str, *, internal: bool) -> None:
        """Add one comment to the documents without re-reading the others (1 UPDATE)."""
        await self.session.execute(self.APPEND, {"ticket_id": ticket_id, "body": body, "internal": internal})
