-- The tiers a lead had when it moved to MQL, recorded with the move: the funnel report counts
-- outcomes by them, which otherwise walks each lead's score history back to its MQL time
-- (1-12 s at a million leads). A trigger copies the lead's current tiers, one row per score,
-- in the statement that inserts the move (the automatic move is inserted after the scores
-- that made it); moves to other stages record nothing. Moves stored before this migration get
-- the tier of their lead's latest history entry at or before the move, as the walk found it.
CREATE TABLE mql_move_tiers (
    stage_history_id INTEGER NOT NULL,
    score            TEXT NOT NULL,
    tier             TEXT,
    PRIMARY KEY (stage_history_id, score)
) WITHOUT ROWID;

CREATE TRIGGER mql_move_tiers_insert AFTER INSERT ON stage_history WHEN NEW.stage = 'mql' BEGIN
    INSERT INTO mql_move_tiers (stage_history_id, score, tier)
        SELECT NEW.id, score, tier FROM lead_scores WHERE lead_id = NEW.lead_id;
END;

INSERT INTO mql_move_tiers (stage_history_id, score, tier)
    WITH RECURSIVE chain(move_id, score, id, at) AS (
        SELECT m.id, s.score, s.history_id, m.at FROM stage_history m
        JOIN lead_scores s ON s.lead_id = m.lead_id
        WHERE m.stage = 'mql' AND s.history_id IS NOT NULL
        UNION ALL
        SELECT c.move_id, c.score, h.previous_id, c.at FROM chain c JOIN score_history h ON h.id = c.id
        WHERE h.at > c.at AND h.previous_id IS NOT NULL
    )
    SELECT c.move_id, c.score, h.tier FROM chain c JOIN score_history h ON h.id = c.id WHERE h.at <= c.at;
