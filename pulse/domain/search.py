"""Turning what a user types into a PostgreSQL ``to_tsquery`` expression. Pure.

Syntax (a small subset of what search boxes usually accept):

- words are ANDed: ``printer jam``
- ``"quoted words"`` must appear as a phrase
- ``-word`` excludes tickets containing the word
- ``or`` between terms: ``printer or scanner``
- the last plain word (of three characters or more) also matches as a prefix (``pass`` finds
  ``password``), so results follow the user while they type.

Every operand is emitted as a quoted, escaped lexeme (``'it''s'``), so whatever the user typed,
the text handed to ``to_tsquery`` is well-formed: no input can raise a syntax error.

Documents weigh the subject A, the description B, public comments C and internal notes D; the
query itself carries no weights (callers without writeSupport search a document without internal
notes, see ``pulse.repositories.ticket_lists``). Weight-restricted variants tell a snippet where
the match is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SEARCH_LENGTH = 1000
MAX_TERMS = 32
MIN_PREFIX_LENGTH = 3  # "a:*" would read every posting list starting with "a"

_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class SearchQuery:
    """``to_tsquery`` input for one search, and its variants restricted to the subject (weight A)
    and the description (B), which tell a snippet where the match is. ``prefix`` is the last
    word's prefix operand alone (None when the last term is no prefix): how many documents hold
    it tells what a GIN scan of the search costs. ``without_prefix`` is the search without that
    last word, when what is left still narrows it (the last group holds another word it must
    contain): every match of the search is among its matches, so the prefix can be checked on
    them instead of scanned in the index."""

    every_weight: str
    subject_only: str
    description_only: str
    prefix: str | None = None
    without_prefix: str | None = None


@dataclass(frozen=True)
class _Term:
    text: str
    negated: bool = False
    phrase: bool = False
    prefix: bool = False


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _operand(term: _Term, weights: str) -> str:
    suffix = ""
    if term.prefix or weights:
        suffix = ":" + ("*" if term.prefix else "") + weights
    return ("!" if term.negated else "") + _quote(term.text) + suffix


def _parse(raw: str) -> list[list[_Term]]:
    """Groups of ANDed terms, the groups ORed."""
    groups: list[list[_Term]] = [[]]
    count = 0
    for match in _TOKEN.finditer(raw):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            text = " ".join(phrase.split())
            if text:
                groups[-1].append(_Term(text=text, phrase=True))
                count += 1
        elif word.lower() == "or":
            if groups[-1]:
                groups.append([])
        else:
            negated = word.startswith("-") and len(word) > 1
            text = word[1:] if negated else word
            text = text.strip("\"'()!&|:*<>")
            if text:
                groups[-1].append(_Term(text=text, negated=negated))
                count += 1
        if count >= MAX_TERMS:
            break
    groups = [group for group in groups if group]
    # A group made only of exclusions would match nearly everything: keep it only if it is all there is.
    if len(groups) > 1:
        groups = [group for group in groups if any(not term.negated for term in group)] or groups[:1]
    if groups:
        last = groups[-1][-1]
        if not last.negated and not last.phrase and len(last.text) >= MIN_PREFIX_LENGTH:
            groups[-1][-1] = _Term(text=last.text, prefix=True)
    return groups


def _render(groups: list[list[_Term]], weights: str) -> str:
    rendered = [" & ".join(_operand(term, weights) for term in group) for group in groups]
    if len(rendered) == 1:
        return rendered[0]
    return " | ".join(f"( {part} )" for part in rendered)


def build_search_query(raw: str) -> SearchQuery | None:
    """The ``to_tsquery`` texts for ``raw``, or None when it holds no searchable term."""
    groups = _parse(raw[:MAX_SEARCH_LENGTH].replace("\x00", " "))
    if not groups:
        return None
    last = groups[-1][-1]
    without_prefix = None
    if last.prefix and any(not term.negated for term in groups[-1][:-1]):
        without_prefix = _render([*groups[:-1], groups[-1][:-1]], "")
    return SearchQuery(every_weight=_render(groups, ""), subject_only=_render(groups, "A"),
                       description_only=_render(groups, "B"), prefix=_operand(last, "") if last.prefix else None,
                       without_prefix=without_prefix)
