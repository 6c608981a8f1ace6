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
    -- identity stitching's look-up of a person's earlier events (router/identity/stitching.py).
    -- Indexed in a side file after the commit (router/outbox/persons.py), not here: indexing
    -- them in the commit that acknowledges the event cost more than the rest of it.
    anonymous_id TEXT,
    user_id      TEXT,
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

-- The attempts log (schema 4): one row per try of a batch at a destination, or per group of
-- its events that ended alike (same request, status and reason), written in the commit that
-- settles them. seqs lists the group's events, comma-separated; NULL means every event of
-- the store routed to the destination with seq_lo <= seq <= seq_hi (a whole claim of new
-- events that ended alike, the usual case, costs no list). Bounded by
-- outbox.attempts_retention_hours and outbox.attempts_max_rows; the id grows with time.
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY,
    store         TEXT    NOT NULL,
    destination   TEXT    NOT NULL,
    at            REAL    NOT NULL,      -- Unix seconds: the request went out (or was settled)
    seq_lo        INTEGER NOT NULL,
    seq_hi        INTEGER NOT NULL,
    seqs          TEXT,
    status        INTEGER,               -- the platform's HTTP status; NULL: nothing was sent
    latency_ms    REAL,
    delivered     INTEGER NOT NULL,
    retrying      INTEGER NOT NULL,
    dead          INTEGER NOT NULL,
    skipped       INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    answer        TEXT,                  -- the platform's answer, truncated and scrubbed of PII
    next_retry_at REAL
);

CREATE INDEX IF NOT EXISTS attempts_lane ON attempts (store, destination, seq_hi);
