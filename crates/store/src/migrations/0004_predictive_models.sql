-- Predictive models (files written by `leadscore train`, uploaded or retrained by the service),
-- numbered per workspace and name; a version never changes once stored.
CREATE TABLE predictive_models (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    -- The model file's JSON text.
    body          TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    origin        TEXT NOT NULL CHECK (origin IN ('upload', 'retrain')),
    created_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, name, version)
);

-- Each scoring model version's predictive references, pinned when the version was stored: a JSON
-- object from the reference (`predictive = "..."`) to the predictive_models id it resolved to.
ALTER TABLE models ADD COLUMN predictors TEXT NOT NULL DEFAULT '{}';
