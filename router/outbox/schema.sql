-- The embedded outbox. Events are written once; each destination keeps a cursor over the log
-- and rows only for its exceptions (retries and dead letters), so a delivered event costs one
-- cursor update per batch, not one row per destination.
--
-- PRAGMA user_version is the schema version (router/outbox/schema.py upgrades older files).

CREATE TABLE IF NOT EXISTS events (
    -- commit order. AUTOINCREMENT: a seq is never handed out twice, even once retention has
    -- purged every row (destination cursors stay where they were, so a reused, lower seq
    -- would sit behind them: never claimed, then purged). Gaps are harmless.
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    store       TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,        -- the sender's messageId: the dedup key everywhere
    received_at REAL    NOT NULL,        -- Unix seconds
    routes      TEXT    NOT NULL,        -- ' dest1 dest2 ': destinations chosen at append time
    body        BLOB    NOT NULL,        -- the canonical event, compact JSON
    -- the body's anonymous_id (an alias without one: its previous_id) and user_id, for
    -- identity stitching's look-up of a person's earlier events (router/identity/stitching.py)
    anonymous_id TEXT,
    user_id      TEXT,
    UNIQUE (store, event_id)
);

CREATE INDEX IF NOT EXISTS events_anonymous_id ON events (store, anonymous_id)
    WHERE anonymous_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user_id ON events (store, user_id) WHERE user_id IS NOT NULL;

-- Every event of a store with seq <= cursor.seq is settled for that destination: delivered,
-- or recorded in deliveries.
CREATE TABLE IF NOT EXISTS cursors (
    store       TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (store, destination)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deliveries (
    store            TEXT    NOT NULL,
    destination      TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('retry', 'dead')),
    attempts         INTEGER NOT NULL,
    first_attempt_at REAL    NOT NULL,
    due_at           REAL,               -- retry: when (or lease end while claimed); dead: NULL
    reason           TEXT    NOT NULL,
    last_status      INTEGER,
    detail           TEXT    NOT NULL DEFAULT '',
    updated_at       REAL    NOT NULL,
    PRIMARY KEY (store, destination, seq)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (store, destination, state, due_at);
