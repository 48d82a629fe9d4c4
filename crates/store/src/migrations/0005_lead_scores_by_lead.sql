-- Current scores stored in the order of their key, so that reading or updating a lead's scores
-- walks one b-tree instead of the key's index and then the table. The rank index stays.
CREATE TABLE lead_scores_by_lead (
    lead_id        INTEGER NOT NULL REFERENCES leads(id),
    score          TEXT NOT NULL,
    value          REAL NOT NULL,
    tier           TEXT,
    model_id       INTEGER NOT NULL,
    evaluated_at   INTEGER NOT NULL,
    PRIMARY KEY (lead_id, score)
) WITHOUT ROWID;
INSERT INTO lead_scores_by_lead (lead_id, score, value, tier, model_id, evaluated_at)
    SELECT lead_id, score, value, tier, model_id, evaluated_at FROM lead_scores;
DROP TABLE lead_scores;
ALTER TABLE lead_scores_by_lead RENAME TO lead_scores;
CREATE INDEX lead_scores_rank ON lead_scores (score, value);
