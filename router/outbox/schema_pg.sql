-- The PostgreSQL outbox at schema version 4 (router/outbox/migrations.py numbers versions for
-- both backends; later versions upgrade this with their step's statements). Same tables and
-- meaning as schema.sql, plus what several nodes share: leases and pauses.

CREATE TABLE IF NOT EXISTS tagless_schema (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    -- commit order: appends take one advisory lock per transaction before their INSERT, so
    -- a higher seq is never visible before a lower one. BIGSERIAL, never reset: a seq is
    -- never handed out twice (no TRUNCATE ... RESTART IDENTITY, no lower setval).
    seq          BIGSERIAL PRIMARY KEY,
    store        TEXT             NOT NULL,
    event_id     TEXT             NOT NULL,
    received_at  DOUBLE PRECISION NOT NULL,
    routes       TEXT             NOT NULL,
    body         BYTEA            NOT NULL,
    anonymous_id TEXT,
    user_id      TEXT,
    UNIQUE (store, event_id)
);

CREATE INDEX IF NOT EXISTS events_store_seq ON events (store, seq);
CREATE INDEX IF NOT EXISTS events_anonymous_id ON events (store, anonymous_id)
    WHERE anonymous_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user_id ON events (store, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS cursors (
    store       TEXT   NOT NULL,
    destination TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (store, destination)
);

CREATE TABLE IF NOT EXISTS deliveries (
    store            TEXT             NOT NULL,
    destination      TEXT             NOT NULL,
    seq              BIGINT           NOT NULL,
    state            TEXT             NOT NULL CHECK (state IN ('retry', 'dead')),
    attempts         INTEGER          NOT NULL,
    first_attempt_at DOUBLE PRECISION NOT NULL,
    due_at           DOUBLE PRECISION,
    reason           TEXT             NOT NULL,
    last_status      INTEGER,
    detail           TEXT             NOT NULL DEFAULT '',
    updated_at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (store, destination, seq)
);

CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (store, destination, state, due_at);
CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries (store, seq);

CREATE TABLE IF NOT EXISTS attempts (
    id            BIGSERIAL PRIMARY KEY,
    store         TEXT             NOT NULL,
    destination   TEXT             NOT NULL,
    at            DOUBLE PRECISION NOT NULL,
    seq_lo        BIGINT           NOT NULL,
    seq_hi        BIGINT           NOT NULL,
    seqs          TEXT,
    status        INTEGER,
    latency_ms    DOUBLE PRECISION,
    delivered     INTEGER          NOT NULL,
    retrying      INTEGER          NOT NULL,
    dead          INTEGER          NOT NULL,
    skipped       INTEGER          NOT NULL,
    reason        TEXT             NOT NULL,
    answer        TEXT,
    next_retry_at DOUBLE PRECISION
);

CREATE INDEX IF NOT EXISTS attempts_lane ON attempts (store, destination, seq_hi);

-- One dispatcher per (store, destination) across the cluster: the node holding the lease
-- until expires_at (the database's clock). epoch grows whenever another node takes it, and a
-- settlement commits only under the epoch it claimed with.
CREATE TABLE IF NOT EXISTS leases (
    store       TEXT        NOT NULL,
    destination TEXT        NOT NULL,
    node        TEXT        NOT NULL,
    epoch       BIGINT      NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store, destination)
);

-- A destination's rest (429, 401/403, repeated failures), seen by whichever node takes its
-- lease next.
CREATE TABLE IF NOT EXISTS pauses (
    store       TEXT             NOT NULL,
    destination TEXT             NOT NULL,
    until       DOUBLE PRECISION NOT NULL,
    reason      TEXT             NOT NULL,
    PRIMARY KEY (store, destination)
);
