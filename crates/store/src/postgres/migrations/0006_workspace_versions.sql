-- A counter per workspace of the changes to what every ingestion reads of it besides its leads:
-- the active model version and the webhooks. An instance keeps them in memory with the counter
-- they were read at, and an ingestion reads the counter in the statement that reads its leads'
-- scores: while it has not moved, the memory is used and two statements are saved per request.
-- Kept by triggers, so that every way of changing them (an activation, a rollback, a webhook made
-- or deleted, a copy from SQLite) moves it in the same transaction. A workspace without a row has
-- had no change since this migration, which reads as version 0.
CREATE TABLE workspace_versions (
    workspace_id  BIGINT PRIMARY KEY REFERENCES workspaces(id),
    version       BIGINT NOT NULL
);

CREATE FUNCTION move_workspace_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD.workspace_id;
    ELSE
        changed := NEW.workspace_id;
    END IF;
    INSERT INTO workspace_versions (workspace_id, version) VALUES (changed, 1)
        ON CONFLICT (workspace_id) DO UPDATE SET version = workspace_versions.version + 1;
    IF TG_OP = 'UPDATE' AND OLD.workspace_id IS DISTINCT FROM NEW.workspace_id THEN
        INSERT INTO workspace_versions (workspace_id, version) VALUES (OLD.workspace_id, 1)
            ON CONFLICT (workspace_id) DO UPDATE SET version = workspace_versions.version + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER active_models_move_workspace_version AFTER INSERT OR UPDATE OR DELETE ON active_models
    FOR EACH ROW EXECUTE FUNCTION move_workspace_version();
CREATE TRIGGER webhooks_move_workspace_version AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION move_workspace_version();
