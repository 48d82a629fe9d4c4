-- Webhook subscriptions, the outbox of notifications (written in the same transaction as the
-- change that caused them) and the log of delivery attempts.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    url           TEXT NOT NULL,
    -- The HMAC-SHA256 key receivers verify signatures with (needed in clear to sign).
    secret        TEXT NOT NULL,
    -- JSON array of event kinds: tier_changed, became_mql, stage_changed, score_crossed.
    events        TEXT NOT NULL,
    score         TEXT,
    threshold     REAL,
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id),
    lead_id          INTEGER NOT NULL,
    event            TEXT NOT NULL,
    data             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    failed_at        INTEGER,
    last_status      INTEGER,
    last_error       TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_lead ON outbox (webhook_id, lead_id, id);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    outbox_id    INTEGER NOT NULL REFERENCES outbox(id),
    at           INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX deliveries_outbox ON deliveries (outbox_id);
