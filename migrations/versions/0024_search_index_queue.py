"""the search index's queue: tickets whose search document changed, written in the change's transaction

The default search engine is a tantivy index beside the API (``pulse.search_index``). Its indexer
learns what changed from ``search_index_queue``: one row per ticket whose row or comments changed
since it was last indexed (``seq`` changes on every change, so the indexer removes only what it
has indexed), written by statement-level triggers in the transaction of the change itself — every
writer (a ticket's workflow, a merge, a migration, SQL by hand) feeds it, at one INSERT per
statement. ``search_index_state`` names the index this database feeds (``index_id``: an index
built for another database, or before a restore, is rebuilt) and counts the indexer's commits
(``generation``: an API process whose searcher is older reloads it).

Revision ID: 0024
Revises: 0023
"""
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE search_index_queue (
    ticket_id bigint PRIMARY KEY,
    account_id bigint NOT NULL,
    seq bigint NOT NULL
);
CREATE INDEX ix_search_index_queue_account ON search_index_queue (account_id);
CREATE SEQUENCE search_index_queue_seq;
CREATE TABLE search_index_state (
    id int PRIMARY KEY CHECK (id = 1),
    index_id uuid NOT NULL DEFAULT gen_random_uuid(),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO search_index_state (id) VALUES (1);

CREATE FUNCTION pulse_search_queue_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_index_queue (ticket_id, account_id, seq)
    SELECT id, account_id, nextval('search_index_queue_seq') FROM changed_tickets
    ON CONFLICT (ticket_id) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END $$;

CREATE FUNCTION pulse_search_queue_comments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_index_queue (ticket_id, account_id, seq)
    SELECT t.id, t.account_id, nextval('search_index_queue_seq')
      FROM tickets t WHERE t.id IN (SELECT ticket_id FROM changed_comments)
    ON CONFLICT (ticket_id) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END $$;
"""

DOWNGRADE = """
DROP FUNCTION pulse_search_queue_comments();
DROP FUNCTION pulse_search_queue_tickets();
DROP TABLE search_index_state;
DROP SEQUENCE search_index_queue_seq;
DROP TABLE search_index_queue;
"""


# One statement-level trigger per table and event (a trigger with transition tables takes one
# event): (trigger name's part, table, the transition table's name, function).
QUEUED_BY = [("ticket", "tickets", "changed_tickets", "pulse_search_queue_tickets"),
             ("comment", "ticket_comments", "changed_comments", "pulse_search_queue_comments")]
EVENTS = [("insert", "NEW"), ("update", "NEW"), ("delete", "OLD")]


def upgrade() -> None:
    op.execute(UPGRADE)
    for part, table, transition, function in QUEUED_BY:
        for event, rows in EVENTS:
            op.execute(f"CREATE TRIGGER search_queue_{part}_{event} AFTER {event.upper()} ON {table} "
                       f"REFERENCING {rows} TABLE AS {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    for part, table, _, _ in QUEUED_BY:
        for event, _ in EVENTS:
            op.execute(f"DROP TRIGGER search_queue_{part}_{event} ON {table}")
    op.execute(DOWNGRADE)
