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

-- A signed-in browser. Its cookie holds a random token and this table the token's SHA-256, so
-- that a copy of the database signs nobody in. A session ends when it has not been used for a
-- while (`idle_until`, moved on as it is used), at `ends_at` whatever happens, or when revoked
-- (sign-out, a disabled account). Every form the session posts carries `csrf_token`.
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    token_hash    BLOB NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    idle_until    INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-ins, by what they were aimed at (`account:` and the e-mail key, `address:` and
-- the client's IP address), so that guessing slows down for an account and for an address, on
-- every instance of the service. Old rows are removed as new ones come.
CREATE TABLE sign_in_failures (
    id        INTEGER PRIMARY KEY,
    subject   TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_subject ON sign_in_failures (subject, at);
