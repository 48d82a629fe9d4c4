-- People who sign in to the console (programs keep using API keys). An account belongs to one
-- workspace with a role: `viewer` (reads), `editor` (also moves stages and edits models) or
-- `admin` (also activates models, manages webhooks, keys and users). The e-mail address signs
-- in: unique over every workspace, compared as `email_key` (trimmed, lower-cased). The password
-- is an Argon2id hash in PHC form, whose parameters and salt travel with it so that they can be
-- raised later without a migration. An account is disabled rather than deleted, so that the
-- stage moves it made keep naming it.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces(id),
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    disabled_at    INTEGER
);
CREATE INDEX users_workspace ON users (workspace_id, id);
