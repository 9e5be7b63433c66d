"""The default search engine: a tantivy index of the tickets beside the API.

- ``documents``: the index's schema and analyzer (PostgreSQL's ``english`` lexemes), one
  document per live ticket, the index on disk and which database it belongs to.
- ``engine``: the API's search (words, prefix, phrases, exclusions, status and priority filters,
  ranked or newest/updated/priority first) as tantivy queries: the ids of a page, and the total.
- ``indexer``: the one writer, fed by ``search_index_queue`` (written in each change's
  transaction), committing every ~100 ms.

The page's rows, their ranking and snippets still come from PostgreSQL by id
(``TicketLists.page_of_found``), so what a search shows is always the database's.
docs/decisions.md "Search through HTTP (issue 15)" tells why and what it measured.
"""
