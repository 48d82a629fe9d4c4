-- Counts the funnel report reads, kept by the writer: triggers change them in the statement
-- that changes what they count, so they are always equal to a count of the rows themselves
-- (checked by `funnel::tests::the_kept_counts_equal_a_recount_after_every_write`) and the
-- report reads a few rows instead of every lead, score and history entry.

-- Leads per model version, score and tier now (`lead_scores`; a merged lead has no scores). A
-- tier may be null (a value in no tier), which a primary key would not tell apart: rows are
-- found by the unique index with `IS`, and created when missing.
CREATE TABLE tier_counts (
    model_id INTEGER NOT NULL,
    score    TEXT NOT NULL,
    tier     TEXT,
    leads    INTEGER NOT NULL
);
CREATE UNIQUE INDEX tier_counts_key ON tier_counts (model_id, score, tier);

-- A score counted in (`model_id`, `score`, `tier`).
CREATE TRIGGER tier_counts_insert AFTER INSERT ON lead_scores BEGIN
    INSERT INTO tier_counts (model_id, score, tier, leads)
        SELECT NEW.model_id, NEW.score, NEW.tier, 0
        WHERE NOT EXISTS (SELECT 1 FROM tier_counts WHERE model_id = NEW.model_id AND score = NEW.score AND tier IS NEW.tier);
    UPDATE tier_counts SET leads = leads + 1 WHERE model_id = NEW.model_id AND score = NEW.score AND tier IS NEW.tier;
END;

CREATE TRIGGER tier_counts_delete AFTER DELETE ON lead_scores BEGIN
    UPDATE tier_counts SET leads = leads - 1 WHERE model_id = OLD.model_id AND score = OLD.score AND tier IS OLD.tier;
END;

-- Scores are updated by every event that changes a value: only a change of what is counted
-- costs more than the comparison.
CREATE TRIGGER tier_counts_update AFTER UPDATE OF tier, model_id, score ON lead_scores
WHEN OLD.tier IS NOT NEW.tier OR OLD.model_id IS NOT NEW.model_id OR OLD.score IS NOT NEW.score BEGIN
    UPDATE tier_counts SET leads = leads - 1 WHERE model_id = OLD.model_id AND score = OLD.score AND tier IS OLD.tier;
    INSERT INTO tier_counts (model_id, score, tier, leads)
        SELECT NEW.model_id, NEW.score, NEW.tier, 0
        WHERE NOT EXISTS (SELECT 1 FROM tier_counts WHERE model_id = NEW.model_id AND score = NEW.score AND tier IS NEW.tier);
    UPDATE tier_counts SET leads = leads + 1 WHERE model_id = NEW.model_id AND score = NEW.score AND tier IS NEW.tier;
END;

INSERT INTO tier_counts (model_id, score, tier, leads)
    SELECT model_id, score, tier, count(*) FROM lead_scores GROUP BY model_id, score, tier;

-- Leads per workspace and stage now, merged leads left out.
CREATE TABLE stage_counts (
    workspace_id INTEGER NOT NULL,
    stage        TEXT NOT NULL,
    leads        INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, stage)
) WITHOUT ROWID;

CREATE TRIGGER stage_counts_insert AFTER INSERT ON leads WHEN NEW.merged_into IS NULL BEGIN
    INSERT INTO stage_counts (workspace_id, stage, leads) VALUES (NEW.workspace_id, NEW.stage, 1)
        ON CONFLICT DO UPDATE SET leads = leads + 1;
END;

CREATE TRIGGER stage_counts_delete AFTER DELETE ON leads WHEN OLD.merged_into IS NULL BEGIN
    UPDATE stage_counts SET leads = leads - 1 WHERE workspace_id = OLD.workspace_id AND stage = OLD.stage;
END;

-- A lead's row is updated by every event, its stage column with it: only a change of stage or
-- a merge costs more than the comparison.
CREATE TRIGGER stage_counts_update AFTER UPDATE OF stage, merged_into, workspace_id ON leads
WHEN OLD.stage IS NOT NEW.stage OR OLD.merged_into IS NOT NEW.merged_into OR OLD.workspace_id IS NOT NEW.workspace_id BEGIN
    UPDATE stage_counts SET leads = leads - 1
        WHERE workspace_id = OLD.workspace_id AND stage = OLD.stage AND OLD.merged_into IS NULL;
    INSERT INTO stage_counts (workspace_id, stage, leads) SELECT NEW.workspace_id, NEW.stage, 1
        WHERE NEW.merged_into IS NULL
        ON CONFLICT DO UPDATE SET leads = leads + 1;
END;

INSERT INTO stage_counts (workspace_id, stage, leads)
    SELECT workspace_id, stage, count(*) FROM leads WHERE merged_into IS NULL GROUP BY workspace_id, stage;

-- Per model version, score, week (its Monday, 00:00 UTC, as `funnel::week_start`) and tier:
-- how the number of scores in the tier changed by the history entries of the week (each
-- entry enters its `tier` and leaves its `previous_tier`). Null tiers are not kept: the report
-- asks for a named tier.
CREATE TABLE tier_changes_by_week (
    model_id INTEGER NOT NULL,
    score    TEXT NOT NULL,
    week     INTEGER NOT NULL,
    tier     TEXT NOT NULL,
    change   INTEGER NOT NULL,
    PRIMARY KEY (score, tier, week, model_id)
) WITHOUT ROWID;

-- Per model version, score and week: how many history entries were a score's first
-- (`previous_id` null), that is how many more leads had the score at the week's end.
CREATE TABLE first_scores_by_week (
    model_id INTEGER NOT NULL,
    score    TEXT NOT NULL,
    week     INTEGER NOT NULL,
    scores   INTEGER NOT NULL,
    PRIMARY KEY (score, week, model_id)
) WITHOUT ROWID;

-- One trigger for the three counts: each trigger run costs a frame of its own. An entry that
-- keeps its tier (a value change) and is not a score's first changes no count.
CREATE TRIGGER score_history_counts AFTER INSERT ON score_history
WHEN NEW.tier IS NOT NEW.previous_tier OR NEW.previous_id IS NULL BEGIN
    INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
        SELECT NEW.model_id, NEW.score, 345600000 + ((NEW.at - 345600000) / 604800000) * 604800000, NEW.tier, 1
        WHERE NEW.tier IS NOT NULL AND NEW.tier IS NOT NEW.previous_tier
        ON CONFLICT DO UPDATE SET change = change + 1;
    INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
        SELECT NEW.model_id, NEW.score, 345600000 + ((NEW.at - 345600000) / 604800000) * 604800000, NEW.previous_tier, -1
        WHERE NEW.previous_tier IS NOT NULL AND NEW.tier IS NOT NEW.previous_tier
        ON CONFLICT DO UPDATE SET change = change - 1;
    INSERT INTO first_scores_by_week (model_id, score, week, scores)
        SELECT NEW.model_id, NEW.score, 345600000 + ((NEW.at - 345600000) / 604800000) * 604800000, 1
        WHERE NEW.previous_id IS NULL
        ON CONFLICT DO UPDATE SET scores = scores + 1;
END;

INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
    SELECT model_id, score, week, tier, sum(change) FROM (
        SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000 AS week, tier, 1 AS change
        FROM score_history WHERE tier IS NOT NULL AND tier IS NOT previous_tier
        UNION ALL
        SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000, previous_tier, -1
        FROM score_history WHERE previous_tier IS NOT NULL AND tier IS NOT previous_tier
    ) GROUP BY model_id, score, week, tier;

INSERT INTO first_scores_by_week (model_id, score, week, scores)
    SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000 AS week, count(*)
    FROM score_history WHERE previous_id IS NULL GROUP BY model_id, score, week;

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
