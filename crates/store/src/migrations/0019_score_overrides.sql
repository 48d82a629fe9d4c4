-- A person's override of a lead's score: a value, a tier or both, with a mandatory reason and an
-- optional expiry. At most one override of a lead's score is in force (`lifted_at IS NULL`); a
-- lifted one stays as the record of who set it and why, and who lifted it ("expiry" for the
-- periodic pass, "replaced" when a newer override took its place, "model vN" when a version
-- without its tier was activated). Reasons and notes are free text: an erasure deletes them.
CREATE TABLE score_overrides (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    lead_id       INTEGER NOT NULL,
    score         TEXT NOT NULL,
    -- At least one of the two; a tier alone leaves the computed value, a value alone takes the
    -- tier the model's points give it.
    value         REAL,
    tier          TEXT,
    reason        TEXT NOT NULL,
    set_by        TEXT NOT NULL,
    set_at        INTEGER NOT NULL,
    expires_at    INTEGER,
    lifted_at     INTEGER,
    lifted_by     TEXT,
    lifted_note   TEXT,
    CHECK (value IS NOT NULL OR tier IS NOT NULL)
);
-- A lead's overrides (few: set by people), for its page, its export and its erasure.
CREATE INDEX score_overrides_lead ON score_overrides (lead_id, score);
-- The overrides in force with an expiry, in the order the periodic pass lifts them.
CREATE INDEX score_overrides_expiry ON score_overrides (expires_at) WHERE lifted_at IS NULL AND expires_at IS NOT NULL;
CREATE UNIQUE INDEX score_overrides_in_force ON score_overrides (lead_id, score) WHERE lifted_at IS NULL;

-- The override in force on a current score, and the model's own value and tier beside the
-- overridden ones (`value` and `tier` are the effective score, which lists sort and filter by
-- and the funnel counts); all three are NULL for a score not overridden.
ALTER TABLE lead_scores ADD COLUMN override_id INTEGER;
ALTER TABLE lead_scores ADD COLUMN computed_value REAL;
ALTER TABLE lead_scores ADD COLUMN computed_tier TEXT;

-- A history entry made by setting or lifting an override names it, so that who and why are read
-- from the override.
ALTER TABLE score_history ADD COLUMN override_id INTEGER;
ALTER TABLE score_history ADD COLUMN override_action TEXT CHECK (override_action IN ('set', 'lifted'));
