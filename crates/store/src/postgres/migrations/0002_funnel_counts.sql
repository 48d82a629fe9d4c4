-- The counts and the cohort walk the funnel report reads, kept by the writer as SQLite keeps
-- them (its migrations 0015, 0016 and 0018; see `postgres/funnel.rs` for what each table holds):
-- triggers change them in the statement that changes what they count, so that they always equal
-- a count of the rows themselves, and the report reads a few rows instead of every lead, score,
-- history entry and stage move.
--
-- Several instances write at once. A trigger that changes two counter rows changes them in one
-- statement, in the order of their keys, so that two transactions changing the same two rows in
-- opposite directions (a lead leaving `hot` for `warm`, another leaving `warm` for `hot`) queue
-- instead of deadlocking (rows of different counters are taken in the writer's order: see
-- `postgres/funnel.rs`). A stage move's triggers read the lead's other moves and cohort rows
-- before writing them: they lock the lead's row first, as the move's own update of the lead's
-- stage does, so that two moves of one lead are kept one after the other.

-- Leads per model version, score and tier now (`lead_scores`; a merged lead has no scores). A
-- tier may be null (a value in no tier): the key reads it as a character no tier name holds, so
-- that one row counts them and `ON CONFLICT` finds it (`UNIQUE NULLS NOT DISTINCT` would say the
-- same, but only from PostgreSQL 15, and the store supports 13).
CREATE TABLE tier_counts (
    model_id BIGINT NOT NULL,
    score    TEXT NOT NULL,
    tier     TEXT,
    leads    BIGINT NOT NULL,
    tier_key TEXT GENERATED ALWAYS AS (coalesce(tier, chr(1))) STORED,
    CONSTRAINT tier_counts_key UNIQUE (model_id, score, tier_key)
);

CREATE FUNCTION funnel_count_tiers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tier_counts (model_id, score, tier, leads) VALUES (NEW.model_id, NEW.score, NEW.tier, 1)
            ON CONFLICT (model_id, score, tier_key) DO UPDATE SET leads = tier_counts.leads + 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE tier_counts SET leads = leads - 1
            WHERE model_id = OLD.model_id AND score = OLD.score AND tier IS NOT DISTINCT FROM OLD.tier;
    ELSE
        -- The row left exists (it counts the score being changed): adding -1 to it is the
        -- decrement. Both rows in the order of their keys (see the top of this file).
        INSERT INTO tier_counts (model_id, score, tier, leads)
            SELECT c.model_id, c.score, c.tier, c.leads
            FROM (VALUES (OLD.model_id, OLD.score, OLD.tier, -1::BIGINT), (NEW.model_id, NEW.score, NEW.tier, 1::BIGINT))
                AS c (model_id, score, tier, leads)
            ORDER BY c.model_id, c.score, c.tier NULLS FIRST
            ON CONFLICT (model_id, score, tier_key) DO UPDATE SET leads = tier_counts.leads + EXCLUDED.leads;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tier_counts_insert AFTER INSERT ON lead_scores
    FOR EACH ROW EXECUTE FUNCTION funnel_count_tiers();
CREATE TRIGGER tier_counts_delete AFTER DELETE ON lead_scores
    FOR EACH ROW EXECUTE FUNCTION funnel_count_tiers();
-- Scores are updated by every event that changes a value: only a change of what is counted
-- costs more than the comparison.
CREATE TRIGGER tier_counts_update AFTER UPDATE OF tier, model_id, score ON lead_scores
    FOR EACH ROW
    WHEN (OLD.tier IS DISTINCT FROM NEW.tier OR OLD.model_id <> NEW.model_id OR OLD.score <> NEW.score)
    EXECUTE FUNCTION funnel_count_tiers();

INSERT INTO tier_counts (model_id, score, tier, leads)
    SELECT model_id, score, tier, count(*) FROM lead_scores GROUP BY model_id, score, tier;

-- Leads per workspace and stage now, merged leads left out.
CREATE TABLE stage_counts (
    workspace_id BIGINT NOT NULL,
    stage        TEXT NOT NULL,
    leads        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, stage)
);

-- The outcome moves of a lead are current while it stays in their stage unmerged (see
-- `outcome_moves` below): kept here with the lead's stage count, by the same update.
CREATE FUNCTION funnel_count_stages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stage_counts (workspace_id, stage, leads) VALUES (NEW.workspace_id, NEW.stage, 1)
            ON CONFLICT (workspace_id, stage) DO UPDATE SET leads = stage_counts.leads + 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE stage_counts SET leads = leads - 1 WHERE workspace_id = OLD.workspace_id AND stage = OLD.stage;
    ELSE
        -- When both rows change, the trigger's condition makes them two rows: in key order.
        INSERT INTO stage_counts (workspace_id, stage, leads)
            SELECT c.workspace_id, c.stage, c.leads
            FROM (VALUES (OLD.workspace_id, OLD.stage, -1::BIGINT, OLD.merged_into IS NULL),
                         (NEW.workspace_id, NEW.stage, 1::BIGINT, NEW.merged_into IS NULL))
                AS c (workspace_id, stage, leads, counted)
            WHERE c.counted
            ORDER BY c.workspace_id, c.stage
            ON CONFLICT (workspace_id, stage) DO UPDATE SET leads = stage_counts.leads + EXCLUDED.leads;
        IF OLD.stage IS DISTINCT FROM NEW.stage OR OLD.merged_into IS DISTINCT FROM NEW.merged_into THEN
            UPDATE outcome_moves SET current = (stage = NEW.stage AND NEW.merged_into IS NULL)
                WHERE lead_id = NEW.id;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stage_counts_insert AFTER INSERT ON leads
    FOR EACH ROW WHEN (NEW.merged_into IS NULL) EXECUTE FUNCTION funnel_count_stages();
CREATE TRIGGER stage_counts_delete AFTER DELETE ON leads
    FOR EACH ROW WHEN (OLD.merged_into IS NULL) EXECUTE FUNCTION funnel_count_stages();
-- A lead's row is updated by every event: only a change of stage or a merge costs more than the
-- comparison.
CREATE TRIGGER stage_counts_update AFTER UPDATE OF stage, merged_into, workspace_id ON leads
    FOR EACH ROW
    WHEN (OLD.stage IS DISTINCT FROM NEW.stage OR OLD.merged_into IS DISTINCT FROM NEW.merged_into
          OR OLD.workspace_id IS DISTINCT FROM NEW.workspace_id)
    EXECUTE FUNCTION funnel_count_stages();

INSERT INTO stage_counts (workspace_id, stage, leads)
    SELECT workspace_id, stage, count(*) FROM leads WHERE merged_into IS NULL GROUP BY workspace_id, stage;

-- Per model version, score, week (its Monday, 00:00 UTC, as `funnel::week_start`) and tier:
-- how the number of scores in the tier changed by the history entries of the week (each entry
-- enters its `tier` and leaves its `previous_tier`). Null tiers are not kept: the report asks
-- for a named tier.
CREATE TABLE tier_changes_by_week (
    model_id BIGINT NOT NULL,
    score    TEXT NOT NULL,
    week     BIGINT NOT NULL,
    tier     TEXT NOT NULL,
    change   BIGINT NOT NULL,
    PRIMARY KEY (score, tier, week, model_id)
);

-- Per model version, score and week: how many history entries were a score's first
-- (`previous_id` null), that is how many more leads had the score at the week's end.
CREATE TABLE first_scores_by_week (
    model_id BIGINT NOT NULL,
    score    TEXT NOT NULL,
    week     BIGINT NOT NULL,
    scores   BIGINT NOT NULL,
    PRIMARY KEY (score, week, model_id)
);

-- An entry that keeps its tier (a value change) and is not a score's first changes no count (the
-- triggers' condition). An erasure deletes entries (the only deletion): they leave the counts as
-- if they had never been written.
CREATE FUNCTION funnel_count_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry score_history;
    sign BIGINT;
    entry_week BIGINT;
    changed RECORD;
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
        IF sign = 1 THEN
            INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
                SELECT entry.model_id, entry.score, entry_week, c.tier, c.change
                FROM (VALUES (entry.tier, 1::BIGINT), (entry.previous_tier, -1::BIGINT)) AS c (tier, change)
                WHERE c.tier IS NOT NULL
                ORDER BY c.tier
                ON CONFLICT (score, tier, week, model_id) DO UPDATE
                    SET change = tier_changes_by_week.change + EXCLUDED.change;
        ELSE
            FOR changed IN
                SELECT c.tier, c.change
                FROM (VALUES (entry.tier, 1::BIGINT), (entry.previous_tier, -1::BIGINT)) AS c (tier, change)
                WHERE c.tier IS NOT NULL
                ORDER BY c.tier
            LOOP
                UPDATE tier_changes_by_week t SET change = t.change - changed.change
                    WHERE t.score = entry.score AND t.tier = changed.tier AND t.week = entry_week
                      AND t.model_id = entry.model_id;
            END LOOP;
        END IF;
    END IF;
    IF entry.previous_id IS NULL THEN
        INSERT INTO first_scores_by_week (model_id, score, week, scores)
            VALUES (entry.model_id, entry.score, entry_week, sign)
            ON CONFLICT (score, week, model_id) DO UPDATE SET scores = first_scores_by_week.scores + EXCLUDED.scores;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER score_history_counts AFTER INSERT ON score_history
    FOR EACH ROW WHEN (NEW.tier IS DISTINCT FROM NEW.previous_tier OR NEW.previous_id IS NULL)
    EXECUTE FUNCTION funnel_count_history();
CREATE TRIGGER score_history_counts_delete AFTER DELETE ON score_history
    FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM OLD.previous_tier OR OLD.previous_id IS NULL)
    EXECUTE FUNCTION funnel_count_history();

INSERT INTO tier_changes_by_week (model_id, score, week, tier, change)
    SELECT model_id, score, week, tier, sum(change) FROM (
        SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000 AS week, tier, 1 AS change
        FROM score_history WHERE tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier
        UNION ALL
        SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000, previous_tier, -1
        FROM score_history WHERE previous_tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier
    ) AS changes GROUP BY model_id, score, week, tier;

INSERT INTO first_scores_by_week (model_id, score, week, scores)
    SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000 AS week, count(*)
    FROM score_history WHERE previous_id IS NULL GROUP BY model_id, score, week;

-- The tiers a lead had when it moved to MQL, recorded with the move from its current scores (the
-- automatic move is inserted after the scores that made it); moves to other stages record
-- nothing.
CREATE TABLE mql_move_tiers (
    stage_history_id BIGINT NOT NULL,
    score            TEXT NOT NULL,
    tier             TEXT,
    PRIMARY KEY (stage_history_id, score)
);

-- One row per move to MQL: its lead, its time, the time of the lead's MQL move before it (by
-- time, then id; null for its first), and the first time at or after it the lead moved to each
-- later stage of the funnel.
CREATE TABLE mql_cohorts (
    workspace_id     BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    stage_history_id BIGINT NOT NULL,
    lead_id          BIGINT NOT NULL,
    previous_at      BIGINT,
    sal              BIGINT,
    sql              BIGINT,
    opportunity      BIGINT,
    customer         BIGINT,
    PRIMARY KEY (workspace_id, at, stage_history_id)
);
CREATE INDEX mql_cohorts_lead ON mql_cohorts (lead_id, at);

-- One row per move to an outcome (`customer`, `lost`, `disqualified`): whether its lead is in
-- that stage now and not merged, the time of the lead's next move to the same stage (by time,
-- then id; null for its last), and the lead's latest MQL move at or before it (by time, then
-- id) with its time.
CREATE TABLE outcome_moves (
    workspace_id     BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    stage_history_id BIGINT NOT NULL,
    lead_id          BIGINT NOT NULL,
    stage            TEXT NOT NULL,
    current          BOOLEAN NOT NULL,
    next_at          BIGINT,
    mql_move_id      BIGINT,
    mql_at           BIGINT,
    PRIMARY KEY (workspace_id, at, stage_history_id)
);
CREATE INDEX outcome_moves_lead ON outcome_moves (lead_id, at);

-- A stage move of the funnel. Moves are never updated nor moved to another lead (a merge leaves
-- them with the merged lead); an erasure deletes a lead's moves with its rows of `mql_cohorts`
-- and `outcome_moves`.
CREATE FUNCTION funnel_stage_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The lock the move's update of the lead's stage takes (see the top of this file).
    PERFORM 1 FROM leads WHERE id = NEW.lead_id FOR NO KEY UPDATE;
    IF NEW.stage = 'mql' THEN
        INSERT INTO mql_move_tiers (stage_history_id, score, tier)
            SELECT NEW.id, score, tier FROM lead_scores WHERE lead_id = NEW.lead_id;
        -- The lead's next MQL move (when this one was stored out of time order) now follows
        -- this one.
        UPDATE mql_cohorts SET previous_at = NEW.at
            WHERE (workspace_id, at, stage_history_id) = (
                SELECT workspace_id, at, stage_history_id FROM mql_cohorts
                WHERE lead_id = NEW.lead_id AND at > NEW.at ORDER BY at, stage_history_id LIMIT 1
            );
        INSERT INTO mql_cohorts (workspace_id, at, stage_history_id, lead_id, previous_at, sal, sql, opportunity, customer)
            SELECT NEW.workspace_id, NEW.at, NEW.id, NEW.lead_id,
                   (SELECT max(p.at) FROM mql_cohorts p
                    WHERE p.lead_id = NEW.lead_id AND p.at <= NEW.at AND p.stage_history_id <> NEW.id),
                   min(s.at) FILTER (WHERE s.stage = 'sal'), min(s.at) FILTER (WHERE s.stage = 'sql'),
                   min(s.at) FILTER (WHERE s.stage = 'opportunity'), min(s.at) FILTER (WHERE s.stage = 'customer')
            FROM stage_history s WHERE s.lead_id = NEW.lead_id AND s.at >= NEW.at;
        -- The lead's outcome moves at or after it have it as their latest MQL move (its id is
        -- the highest: among moves of the same time it is the latest).
        UPDATE outcome_moves SET mql_move_id = NEW.id, mql_at = NEW.at
            WHERE lead_id = NEW.lead_id AND at >= NEW.at AND (mql_at IS NULL OR mql_at <= NEW.at);
    ELSIF NEW.stage IN ('sal', 'sql', 'opportunity', 'customer') THEN
        -- The first such move after each of the lead's MQL moves before it.
        UPDATE mql_cohorts SET
            sal = CASE WHEN NEW.stage = 'sal' AND (sal IS NULL OR sal > NEW.at) THEN NEW.at ELSE sal END,
            sql = CASE WHEN NEW.stage = 'sql' AND (sql IS NULL OR sql > NEW.at) THEN NEW.at ELSE sql END,
            opportunity = CASE WHEN NEW.stage = 'opportunity' AND (opportunity IS NULL OR opportunity > NEW.at)
                               THEN NEW.at ELSE opportunity END,
            customer = CASE WHEN NEW.stage = 'customer' AND (customer IS NULL OR customer > NEW.at)
                            THEN NEW.at ELSE customer END
            WHERE lead_id = NEW.lead_id AND at <= NEW.at;
    END IF;
    IF NEW.stage IN ('customer', 'lost', 'disqualified') THEN
        -- The lead's move to the same stage before it (when this one was stored out of time
        -- order, the one before it in time) is now followed by this one.
        UPDATE outcome_moves SET next_at = NEW.at
            WHERE (workspace_id, at, stage_history_id) = (
                SELECT workspace_id, at, stage_history_id FROM outcome_moves
                WHERE lead_id = NEW.lead_id AND stage = NEW.stage AND at <= NEW.at AND stage_history_id <> NEW.id
                ORDER BY at DESC, stage_history_id DESC LIMIT 1
            );
        INSERT INTO outcome_moves (workspace_id, at, stage_history_id, lead_id, stage, current, next_at, mql_move_id, mql_at)
            SELECT NEW.workspace_id, NEW.at, NEW.id, NEW.lead_id, NEW.stage,
                   coalesce((SELECT l.stage = NEW.stage AND l.merged_into IS NULL FROM leads l WHERE l.id = NEW.lead_id),
                            false),
                   (SELECT min(n.at) FROM outcome_moves n
                    WHERE n.lead_id = NEW.lead_id AND n.stage = NEW.stage AND n.at > NEW.at),
                   m.stage_history_id, m.at
            FROM (SELECT 1) AS one LEFT JOIN LATERAL (
                SELECT stage_history_id, at FROM mql_cohorts WHERE lead_id = NEW.lead_id AND at <= NEW.at
                ORDER BY at DESC, stage_history_id DESC LIMIT 1
            ) AS m ON true;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER funnel_stage_moved AFTER INSERT ON stage_history
    FOR EACH ROW WHEN (NEW.stage IN ('mql', 'sal', 'sql', 'opportunity', 'customer', 'lost', 'disqualified'))
    EXECUTE FUNCTION funnel_stage_moved();

-- An erasure deletes a lead's stage moves: their tiers at MQL go with them.
CREATE FUNCTION funnel_mql_move_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mql_move_tiers WHERE stage_history_id = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER mql_move_tiers_delete AFTER DELETE ON stage_history
    FOR EACH ROW WHEN (OLD.stage = 'mql') EXECUTE FUNCTION funnel_mql_move_deleted();

-- The rows of moves stored before this migration, as the walk of the moves finds them.
INSERT INTO mql_move_tiers (stage_history_id, score, tier)
    WITH RECURSIVE chain (move_id, score, id, at) AS (
        SELECT m.id, s.score, s.history_id, m.at FROM stage_history m
        JOIN lead_scores s ON s.lead_id = m.lead_id
        WHERE m.stage = 'mql' AND s.history_id IS NOT NULL
        UNION ALL
        SELECT c.move_id, c.score, h.previous_id, c.at FROM chain c JOIN score_history h ON h.id = c.id
        WHERE h.at > c.at AND h.previous_id IS NOT NULL
    )
    SELECT c.move_id, c.score, h.tier FROM chain c JOIN score_history h ON h.id = c.id WHERE h.at <= c.at;

INSERT INTO mql_cohorts (workspace_id, at, stage_history_id, lead_id, previous_at, sal, sql, opportunity, customer)
    SELECT m.workspace_id, m.at, m.id, m.lead_id,
           (SELECT max(p.at) FROM stage_history p
            WHERE p.lead_id = m.lead_id AND p.stage = 'mql' AND (p.at < m.at OR (p.at = m.at AND p.id < m.id))),
           min(s.at) FILTER (WHERE s.stage = 'sal'), min(s.at) FILTER (WHERE s.stage = 'sql'),
           min(s.at) FILTER (WHERE s.stage = 'opportunity'), min(s.at) FILTER (WHERE s.stage = 'customer')
    FROM stage_history m JOIN stage_history s ON s.lead_id = m.lead_id AND s.at >= m.at
    WHERE m.stage = 'mql' AND m.workspace_id IS NOT NULL
    GROUP BY m.id;

INSERT INTO outcome_moves (workspace_id, at, stage_history_id, lead_id, stage, current, next_at, mql_move_id, mql_at)
    SELECT o.workspace_id, o.at, o.id, o.lead_id, o.stage,
           coalesce((SELECT l.stage = o.stage AND l.merged_into IS NULL FROM leads l WHERE l.id = o.lead_id), false),
           (SELECT min(n.at) FROM stage_history n
            WHERE n.lead_id = o.lead_id AND n.stage = o.stage AND (n.at > o.at OR (n.at = o.at AND n.id > o.id))),
           m.id, m.at
    FROM stage_history o LEFT JOIN stage_history m ON m.id = (
        SELECT s.id FROM stage_history s WHERE s.lead_id = o.lead_id AND s.stage = 'mql' AND s.at <= o.at
          AND s.workspace_id IS NOT NULL ORDER BY s.at DESC, s.id DESC LIMIT 1
    )
    WHERE o.stage IN ('customer', 'lost', 'disqualified') AND o.workspace_id IS NOT NULL;
