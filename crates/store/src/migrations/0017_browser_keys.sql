-- Browser keys: public keys that a website's pages carry, each bound to the origins (scheme,
-- host and port, as a browser's `Origin` header spells them) allowed to use it. The scope's
-- CHECK constraint names the scopes, so the table is rebuilt with the new one (SQLite cannot
-- change a constraint in place). `origins` holds the allowed origins separated by single spaces
-- (an origin has none); it is empty for keys of other scopes.
CREATE TABLE api_keys_new (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    prefix        TEXT NOT NULL,
    secret_hash   BLOB NOT NULL UNIQUE,
    scope         TEXT NOT NULL CHECK (scope IN ('ingest', 'read', 'admin', 'browser')),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    name          TEXT NOT NULL DEFAULT '',
    origins       TEXT NOT NULL DEFAULT '',
    CHECK ((scope = 'browser') = (origins <> ''))
);
INSERT INTO api_keys_new (id, workspace_id, prefix, secret_hash, scope, created_at, revoked_at, name)
    SELECT id, workspace_id, prefix, secret_hash, scope, created_at, revoked_at, name FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
