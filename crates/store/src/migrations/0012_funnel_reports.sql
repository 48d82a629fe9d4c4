-- The funnel report reads stage moves by stage and time (who became an MQL this month, who
-- reached customer or lost) and score history by score and time (the tiers at the end of each
-- week). Both indexes grow at their end as rows are appended, unlike an index by lead, and
-- hold the columns the report reads, so that it never visits the rows themselves.
CREATE INDEX stage_history_stage ON stage_history (stage, at, lead_id);
CREATE INDEX score_history_score ON score_history (score, at, model_id, tier, previous_tier, previous_id);
