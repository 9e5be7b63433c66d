"""What the search index's queue costs a write (migration 0024's triggers), on bench/search.py's
million tickets.

    flock /tmp/pulse-bench.lock .venv/bin/python bench/search_queue_cost.py --embedded /work/bench/pg [--writes 2000]

Two statements a ticket's write runs, each in its own transaction, timed from the client over
loopback (autocommit, one connection): a ticket's row updated (``UPDATE tickets SET subject =
subject``: the row rewritten, nothing shown changes) and a comment added (inserted and rolled
back, so the data stays as generated). Rounds alternate between the triggers enabled and
disabled (``ALTER TABLE … DISABLE TRIGGER``), the same tickets in each, and the queue rows the
enabled rounds add are removed after each round; a first round over the same tickets warms
their pages. Prints p50 / p90 per statement and the difference (a mean is the embedded server's
occasional fsync stall, up to a second, whichever round it falls in): what every write pays for
search to find it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import search  # noqa: E402

TRIGGERS = {"tickets": ["search_queue_ticket_update"], "ticket_comments": ["search_queue_comment_insert"]}


def set_triggers(db: psycopg.Connection, enabled: bool) -> None:
    for table, names in TRIGGERS.items():
        for name in names:
            db.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {name}")


def round_(db: psycopg.Connection, tickets: list[tuple[int, int]]) -> tuple[list[float], list[float]]:
    updates, comments = [], []
    for ticket_id, account_id in tickets:
        started = time.perf_counter()
        db.execute("UPDATE tickets SET subject = subject WHERE id = %s", (ticket_id,))
        updates.append((time.perf_counter() - started) * 1e6)
        started = time.perf_counter()
        with db.transaction(force_rollback=True):
            db.execute("INSERT INTO ticket_comments (account_id, ticket_id, body, is_internal, author_type, created_at) "
                       "VALUES (%s, %s, 'queue cost probe', false, 'agent', now())", (account_id, ticket_id))
        comments.append((time.perf_counter() - started) * 1e6)
    return updates, comments


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedded", type=Path, metavar="DIR", help="bench/search.py's embedded PostgreSQL")
    parser.add_argument("--writes", type=int, default=2000, help="tickets per round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    with search.embedded(args.embedded):
        url = search.database_url()
        with psycopg.connect(url, autocommit=True) as db:
            if db.execute("SELECT to_regclass('search_index_queue')").fetchone()[0] is None:
                from pulse.devstack import migrate
                migrate(url)
            queued_before = {row[0] for row in db.execute("SELECT ticket_id FROM search_index_queue")}
            tickets = db.execute("SELECT id, account_id FROM tickets WHERE deleted_at IS NULL "
                                 "ORDER BY random() LIMIT %s", (args.writes,)).fetchall()
            tickets = [t for t in tickets if t[0] not in queued_before]
            timings: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
            print(f"machine load {search.load()}; {len(tickets):,} tickets per round, {args.rounds} rounds")
            round_(db, tickets)  # warm-up: every ticket's pages read once (the first round paid ~9 ms p50 for that)
            db.execute("DELETE FROM search_index_queue WHERE ticket_id = ANY(%s)", ([t[0] for t in tickets],))
            for i in range(args.rounds):
                enabled = i % 2 == 0
                set_triggers(db, enabled)
                updates, comments = round_(db, random.Random(i).sample(tickets, len(tickets)))
                timings[enabled][0].extend(updates)
                timings[enabled][1].extend(comments)
                print(f"round {i + 1} (triggers {'on' if enabled else 'off'}): update p50 / mean / max "
                      f"{statistics.median(updates):.0f} / {statistics.fmean(updates):.0f} / {max(updates):.0f} µs, "
                      f"comment {statistics.median(comments):.0f} / {statistics.fmean(comments):.0f} µs")
                set_triggers(db, True)
                db.execute("DELETE FROM search_index_queue WHERE ticket_id = ANY(%s)", ([t[0] for t in tickets],))
            print("\n| statement (µs, client-timed, autocommit) | triggers off p50 / p90 | on p50 / p90 | cost p50 / p90 |")
            print("|---|---:|---:|---:|")
            for index, label in ((0, "ticket row updated"), (1, "comment added (rolled back)")):
                off, on = timings[False][index], timings[True][index]
                p_off, p_on = statistics.median(off), statistics.median(on)
                p90_off, p90_on = statistics.quantiles(off, n=10)[-1], statistics.quantiles(on, n=10)[-1]
                print(f"| {label} | {p_off:.0f} / {p90_off:.0f} | {p_on:.0f} / {p90_on:.0f} | "
                      f"+{p_on - p_off:.0f} / +{p90_on - p90_off:.0f} |")
            print(f"\nmachine load at the end {search.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
