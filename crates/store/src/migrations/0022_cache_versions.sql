-- A counter of the changes to what services keep in memory between requests (API keys, with the
-- origins of browser keys): a running service reads it every second and drops its caches when it
-- moved, so that a key revoked by the command line stops working within a second. Kept by
-- triggers, so that every way of writing a key (the service, the command line, a migration)
-- moves it in the same transaction.
CREATE TABLE cache_versions (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO cache_versions (id, version) VALUES (1, 0);

CREATE TRIGGER api_keys_inserted_move_cache_version AFTER INSERT ON api_keys
BEGIN
    UPDATE cache_versions SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_updated_move_cache_version AFTER UPDATE ON api_keys
BEGIN
    UPDATE cache_versions SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_deleted_move_cache_version AFTER DELETE ON api_keys
BEGIN
    UPDATE cache_versions SET version = version + 1 WHERE id = 1;
END;
