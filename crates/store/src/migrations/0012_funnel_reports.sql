-- The funnel report reads stage moves by stage and time (who became an MQL this month, who
-- reached customer or lost) and score history by score and time (the tiers at the end of each
-- week). Both indexes grow at their end as rows are appended, unlike an index by lead.
CREATE INDEX stage_history_stage ON stage_history (stage, at);
CREATE INDEX score_history_score ON score_history (score, at);
