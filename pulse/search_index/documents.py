"""The search index's schema, analyzer and documents, and the index on disk.

One document per live ticket: ``ticket_id`` and ``account_id`` (indexed + fast: every query is
restricted to one account), ``created_at`` / ``updated_at`` (µs, fast: newest first),
``status`` and ``priority_rank`` (indexed + fast: the filters and the priority sort), ``public``
(subject, description, public comments) and ``notes`` (internal notes) — a reader's query names
``public`` only, so hiding internal notes is a matter of which fields a query names — and their
``*_prefixes`` twins: every stem's starts of ``MIN_PREFIX_LENGTH`` characters or more, so a typed
prefix is one posting list, not the union of every word it starts.

The analyzer gives PostgreSQL's ``english`` lexemes: words split on what is not a letter or
digit, lowercased, PostgreSQL's English stop words dropped, the Snowball English stemmer. (The
parsers differ on hyphenated words, e-mail addresses and URLs, which PostgreSQL also keeps whole.)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from pulse.domain.search import MIN_PREFIX_LENGTH

SCHEMA_VERSION = 1  # a change of schema or analyzer: every index is rebuilt
TOKENIZER = "pulse_en"
WHITESPACE = "pulse_ws"
IDENTITY_FILE = "pulse-index.json"
MAX_WORD = 2048  # PostgreSQL drops longer words too
MAX_PREFIXED = 64  # a longer stem's starts are not terms of their own (a prefix of it is a regex)
# PostgreSQL's english.stop (tsearch_data), which its ``english`` configuration drops.
POSTGRES_ENGLISH_STOP_WORDS = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now
""".split()


def analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(MAX_WORD)).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.custom_stopword(POSTGRES_ENGLISH_STOP_WORDS))
            .filter(tantivy.Filter.stemmer("english")).build())


def schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("ticket_id", indexed=True, fast=True)
    builder.add_unsigned_field("account_id", indexed=True, fast=True)
    builder.add_integer_field("created_at", fast=True)
    builder.add_integer_field("updated_at", fast=True)
    builder.add_text_field("status", fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("priority_rank", indexed=True, fast=True)
    builder.add_text_field("public", tokenizer_name=TOKENIZER, index_option="position")
    builder.add_text_field("notes", tokenizer_name=TOKENIZER, index_option="position")
    builder.add_text_field("public_prefixes", tokenizer_name=WHITESPACE, index_option="basic")
    builder.add_text_field("notes_prefixes", tokenizer_name=WHITESPACE, index_option="basic")
    return builder.build()


def _register(index: tantivy.Index) -> tantivy.Index:
    index.register_tokenizer(TOKENIZER, analyzer())
    index.register_tokenizer(WHITESPACE, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    return index


def identity(path: Path) -> dict[str, Any] | None:
    """``{"index_id", "schema"}`` of the index at ``path`` (None: none there)."""
    try:
        return json.loads((path / IDENTITY_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_current(path: Path, index_id: str) -> bool:
    """The index at ``path`` was built for this database's ``index_id`` with today's schema."""
    return identity(path) == {"index_id": index_id, "schema": SCHEMA_VERSION}


def open_index(path: Path) -> tantivy.Index:
    return _register(tantivy.Index.open(str(path)))


def create_index(path: Path) -> tantivy.Index:
    """A new, empty index at ``path`` (whatever was there is removed); ``mark_current`` once
    every ticket is queued for it."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return _register(tantivy.Index(schema(), path=str(path)))


def mark_current(path: Path, index_id: str) -> None:
    (path / IDENTITY_FILE).write_text(json.dumps({"index_id": index_id, "schema": SCHEMA_VERSION}))


def prefixes(stems: list[str]) -> str:
    """Every start of every stem from ``MIN_PREFIX_LENGTH`` characters on, once, space-separated."""
    return " ".join({stem[:end] for stem in set(stems) if len(stem) <= MAX_PREFIXED
                     for end in range(MIN_PREFIX_LENGTH, len(stem) + 1)})


@dataclass(frozen=True)
class TicketText:
    """What the index holds of one live ticket (read by ``SearchIndexQueue.documents``)."""

    ticket_id: int
    account_id: int
    created_us: int
    updated_us: int
    status: str
    priority_rank: int
    public: str  # subject, description and public comments
    notes: str  # internal notes


def prefix_terms(ticket: TicketText, stemmer: tantivy.TextAnalyzer) -> tuple[str, str]:
    """The ``public_prefixes`` and ``notes_prefixes`` of a ticket's text (most of a document's
    cost: the text analyzed once more)."""
    notes = prefixes(stemmer.analyze(ticket.notes)) if ticket.notes else ""
    return prefixes(stemmer.analyze(ticket.public)), notes


def make_document(ticket: TicketText, stemmer: tantivy.TextAnalyzer,
                  terms: tuple[str, str] | None = None) -> tantivy.Document:
    """The ticket's document; ``terms``: its ``prefix_terms`` when already known."""
    public_prefixes, notes_prefixes = terms or prefix_terms(ticket, stemmer)
    document = tantivy.Document()
    document.add_unsigned("ticket_id", ticket.ticket_id)
    document.add_unsigned("account_id", ticket.account_id)
    document.add_integer("created_at", ticket.created_us)
    document.add_integer("updated_at", ticket.updated_us)
    document.add_text("status", ticket.status)
    document.add_unsigned("priority_rank", ticket.priority_rank)
    document.add_text("public", ticket.public)
    document.add_text("public_prefixes", public_prefixes)
    if ticket.notes:
        document.add_text("notes", ticket.notes)
        document.add_text("notes_prefixes", notes_prefixes)
    return document
