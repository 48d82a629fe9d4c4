-- A counter of the changes to what instances keep in memory between requests (API keys, with the
-- origins of browser keys): every instance reads it every second and drops its caches when it
-- moved, so that a key revoked through one instance, or by the command line, stops working on
-- every instance within a second. Kept by a trigger, so that every way of writing a key moves it
-- in the same transaction. For each row, as SQLite's triggers are: a statement that changes no key
-- leaves it alone.
CREATE TABLE cache_versions (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO cache_versions (id, version) VALUES (1, 0);

CREATE FUNCTION move_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_versions SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_move_cache_version AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION move_cache_version();
