-- Explanations are computed when a lead is read (scores move with time); storing one per score
-- at every event was never read and cost most of a page write per event.
ALTER TABLE lead_scores DROP COLUMN explanation;
