-- Every activation of a model version, in order: the version stack that rollbacks walk down.
-- A rollback marks the newest activation still standing as undone; the active version is the
-- one of the newest activation not undone. `origin` says who activated it: `upload` (the first
-- version uploaded), `api`, `file` (`leadscore serve --model` at start) or `retrain`.
CREATE TABLE model_activations (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    model_id      INTEGER NOT NULL REFERENCES models(id),
    origin        TEXT NOT NULL,
    at            INTEGER NOT NULL,
    undone_at     INTEGER
);
CREATE INDEX model_activations_workspace ON model_activations (workspace_id, id);

-- The versions activated before this table existed, oldest first, so that the active one is on
-- top of its workspace's stack.
INSERT INTO model_activations (workspace_id, model_id, origin, at)
SELECT m.workspace_id, m.id, 'api', m.activated_at
FROM models m
WHERE m.activated_at IS NOT NULL
ORDER BY (m.id IN (SELECT model_id FROM active_models)), m.activated_at, m.id;

-- The rescoring of a workspace's leads after an activation (one row per workspace: the running
-- or the last one). Each batch writes its progress in its own transaction, so that a rescoring
-- cut short by a crash resumes after the last lead it finished when the service starts again.
-- `revert_automatic_since`: after a rollback, automatic moves to MQL made since this time, which
-- the restored version does not support, are moved back.
CREATE TABLE rescorings (
    workspace_id            INTEGER PRIMARY KEY REFERENCES workspaces(id),
    model_id                INTEGER NOT NULL REFERENCES models(id),
    cause                   TEXT NOT NULL,
    after_lead_id           INTEGER NOT NULL DEFAULT 0,
    done                    INTEGER NOT NULL DEFAULT 0,
    total                   INTEGER NOT NULL DEFAULT 0,
    started_at              INTEGER NOT NULL,
    finished_at             INTEGER,
    error                   TEXT,
    revert_automatic_since  INTEGER
);

-- One row, rewritten by `/readyz` while writes fail, to find out whether storage takes them again.
CREATE TABLE write_probes (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
