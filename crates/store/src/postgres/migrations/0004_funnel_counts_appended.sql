-- The funnel's counters as changes appended, summed when read and folded in the background (see
-- `postgres/funnel.rs`, "Several writers"), instead of one row per key that every writer updates.
--
-- Migration 2 kept one row per counted key (a tier, a stage, a week), changed in place by
-- triggers: every transaction creating a lead or changing a tier then held the same few rows
-- locked until it committed, so the requests of every instance queued on them, and two requests
-- taking two such rows in opposite orders deadlocked. Here each change is a row of its own, which
-- an insert adds without touching any other: no writer waits for another on a count. The reads
-- sum the rows of a key (they summed already where a key had several model versions), and
-- `funnel::fold_counts` replaces a key's rows by their sum from time to time, so that the reads
-- stay short.

ALTER TABLE tier_counts DROP CONSTRAINT tier_counts_key, DROP COLUMN tier_key;
CREATE INDEX tier_counts_by_score ON tier_counts (model_id, score);

ALTER TABLE stage_counts DROP CONSTRAINT stage_counts_pkey;
CREATE INDEX stage_counts_by_workspace ON stage_counts (workspace_id, stage);

ALTER TABLE tier_changes_by_week DROP CONSTRAINT tier_changes_by_week_pkey;
CREATE INDEX tier_changes_by_week_key ON tier_changes_by_week (score, tier, week, model_id);

ALTER TABLE first_scores_by_week DROP CONSTRAINT first_scores_by_week_pkey;
CREATE INDEX first_scores_by_week_key ON first_scores_by_week (score, week, model_id);

CREATE OR REPLACE FUNCTION funnel_count_tiers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tier_counts (model_id, score, tier, leads) VALUES (NEW.model_id, NEW.score, NEW.tier, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tier_counts (model_id, score, tier, leads) VALUES (OLD.model_id, OLD.score, OLD.tier, -1);
    ELSE
        INSERT INTO tier_counts (model_id, score, tier, leads)
            VALUES (OLD.model_id, OLD.score, OLD.tier, -1), (NEW.model_id, NEW.score, NEW.tier, 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION funnel_count_stages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stage_counts (workspace_id, stage, leads) VALUES (NEW.workspace_id, NEW.stage, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO stage_counts (workspace_id, stage, leads) VALUES (OLD.workspace_id, OLD.stage, -1);
    ELSE
        INSERT INTO stage_counts (workspace_id, stage, leads)
            SELECT c.workspace_id, c.stage, c.leads
            FROM (VALUES (OLD.workspace_id, OLD.stage, -1::BIGINT, OLD.merged_into IS NULL),
                         (NEW.workspace_id, NEW.stage, 1::BIGINT, NEW.merged_into IS NULL))
                AS c (workspace_id, stage, leads, counted)
            WHERE c.counted;
        IF OLD.stage IS DISTINCT FROM NEW.stage OR OLD.merged_into IS DISTINCT FROM NEW.merged_into THEN
            UPDATE outcome_moves SET current = (stage = NEW.stage AND NEW.merged_into IS NULL)
                WHERE lead_id = NEW.id;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- A history entry's changes, added when it is inserted and taken back when an erasure deletes it.
CREATE OR REPLACE FUNCTION funnel_count_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry score_history;
    sign BIGINT;
    entry_week BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        entry := NEW;
        sign := 1;
    ELSE
        entry := OLD;
        sign := -1;
    END IF;
    entry_week := 345600000 + ((entry.at - 345600000) / 604800000) * 604800000;
    IF entry.tier IS DISTINCT FROM entry.previous_tier THEN
        INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
            SELECT entry.model_id, entry.score, entry_week, c.tier, sign * c.change
            FROM (VALUES (entry.tier, 1::BIGINT), (entry.previous_tier, -1::BIGINT)) AS c (tier, change)
            WHERE c.tier IS NOT NULL;
    END IF;
    IF entry.previous_id IS NULL THEN
        INSERT INTO first_scores_by_week (model_id, score, week, scores)
            VALUES (entry.model_id, entry.score, entry_week, sign);
    END IF;
    RETURN NULL;
END;
$$;
