-- Why each score history entry moved: its terms (cause, score, rule, points), as the JSON the
-- service wrote with it. Entries written before have none.
ALTER TABLE score_history ADD COLUMN terms TEXT;
