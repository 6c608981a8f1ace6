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
    UNIQUE (store, event_id)
);

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

-- Identity stitching (stores with stitching on): the latest IP, user agent, ids and hashed
-- email seen for one id of a person, written in the commit of the event that carried them,
-- purged with retention. body: {field: [value, seen_at, event_id]}, compact JSON.
CREATE TABLE IF NOT EXISTS identities (
    store   TEXT NOT NULL,
    kind    TEXT NOT NULL,                -- user_id or anonymous_id
    id      TEXT NOT NULL,
    seen_at REAL NOT NULL,                -- Unix seconds
    body    BLOB NOT NULL,
    PRIMARY KEY (store, kind, id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS identities_seen ON identities (store, seen_at);
