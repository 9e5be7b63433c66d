"""Turning what a user types into a PostgreSQL ``to_tsquery`` expression. Pure.

Syntax (a small subset of what search boxes usually accept):

- words are ANDed: ``printer jam``
- ``"quoted words"`` must appear as a phrase
- ``-word`` excludes tickets containing the word
- ``or`` between terms: ``printer or scanner``
- the last plain word also matches as a prefix (``pass`` finds ``password``), so results follow
  the user while they type.

Every operand is emitted as a quoted, escaped lexeme (``'it''s'``), so whatever the user typed,
the text handed to ``to_tsquery`` is well-formed: no input can raise a syntax error.

Internal notes are indexed with weight D; subject A, description B, public comments C. The
query for callers who may not see internal notes restricts every operand to ``:ABC``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SEARCH_LENGTH = 1000
MAX_TERMS = 32
PUBLIC_WEIGHTS = "ABC"

_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class SearchQuery:
    """``to_tsquery`` input for one search: over everything, and over public text only."""

    every_weight: str
    public_only: str
    subject_only: str = ""  # weight A: where a snippet comes from (see TicketLists._snippets)
    description_only: str = ""  # weight B

    def for_caller(self, include_internal: bool) -> str:
        return self.every_weight if include_internal else self.public_only


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
        if not last.negated and not last.phrase:
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
    return SearchQuery(every_weight=_render(groups, ""), public_only=_render(groups, PUBLIC_WEIGHTS),
                       subject_only=_render(groups, "A"), description_only=_render(groups, "B"))
