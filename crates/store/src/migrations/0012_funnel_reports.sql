-- The funnel report reads stage moves by workspace, stage and time (who became an MQL this
-- month, who reached customer or lost) and score history by score and time (the tiers at the
-- end of each week). A stage move now carries its lead's workspace, so that the report finds a
-- workspace's moves without visiting each lead. Both indexes grow at their end as rows are
-- appended, unlike an index by lead, and hold the columns the report reads, so that it never
-- visits the rows themselves.
ALTER TABLE stage_history ADD COLUMN workspace_id INTEGER REFERENCES workspaces(id);
UPDATE stage_history SET workspace_id = (SELECT workspace_id FROM leads WHERE leads.id = stage_history.lead_id);
CREATE INDEX stage_history_stage ON stage_history (workspace_id, stage, at, lead_id);
CREATE INDEX score_history_score ON score_history (score, at, model_id, tier, previous_tier, previous_id);
