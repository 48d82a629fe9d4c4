-- Tenants, their API keys and their scoring models.
CREATE TABLE workspaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Keys are stored as the SHA-256 of the secret; `prefix` (the first characters) identifies a key
-- in listings without revealing it.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    prefix        TEXT NOT NULL,
    secret_hash   BLOB NOT NULL UNIQUE,
    scope         TEXT NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

CREATE TABLE models (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    version       INTEGER NOT NULL,
    source        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER,
    UNIQUE (workspace_id, version)
);

-- At most one active model per workspace.
CREATE TABLE active_models (
    workspace_id  INTEGER PRIMARY KEY REFERENCES workspaces(id),
    model_id      INTEGER NOT NULL REFERENCES models(id)
);

-- A lead: `user_id` is the client's stable id (Segment's userId); anonymous leads have none
-- until an identify call links them.
CREATE TABLE leads (
    id             INTEGER PRIMARY KEY,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces(id),
    user_id        TEXT,
    email          TEXT,
    attributes     TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_event_at  INTEGER,
    stage          TEXT NOT NULL DEFAULT 'lead',
    -- The engine's state for the model in `state_model_id` (JSON), rebuilt from events otherwise.
    state          TEXT,
    state_model_id INTEGER,
    merged_into    INTEGER REFERENCES leads(id)
);
CREATE UNIQUE INDEX leads_user_id ON leads (workspace_id, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE anonymous_ids (
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    anonymous_id  TEXT NOT NULL,
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    PRIMARY KEY (workspace_id, anonymous_id)
);

-- Append-only; `message_id` makes ingestion idempotent.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    message_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    properties    TEXT NOT NULL DEFAULT '{}',
    UNIQUE (workspace_id, message_id)
);
CREATE INDEX events_lead ON events (lead_id, at);

CREATE TABLE lead_scores (
    lead_id        INTEGER NOT NULL REFERENCES leads(id),
    score          TEXT NOT NULL,
    value          REAL NOT NULL,
    tier           TEXT,
    explanation    TEXT NOT NULL,
    model_id       INTEGER NOT NULL,
    evaluated_at   INTEGER NOT NULL,
    PRIMARY KEY (lead_id, score)
);
CREATE INDEX lead_scores_rank ON lead_scores (score, value);

CREATE TABLE score_history (
    id            INTEGER PRIMARY KEY,
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    score         TEXT NOT NULL,
    value         REAL NOT NULL,
    tier          TEXT,
    previous_tier TEXT,
    model_id      INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    cause         TEXT NOT NULL
);
CREATE INDEX score_history_lead ON score_history (lead_id, at);

CREATE TABLE stage_history (
    id            INTEGER PRIMARY KEY,
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    stage         TEXT NOT NULL,
    previous      TEXT,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    reason        TEXT
);
CREATE INDEX stage_history_lead ON stage_history (lead_id, at);
