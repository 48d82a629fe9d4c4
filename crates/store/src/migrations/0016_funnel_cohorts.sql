-- The funnel report's cohort walk, kept by the writer: the way of each MQL entry through the
-- funnel and what each outcome move counts by, so that the report reads one range of rows by
-- workspace and time instead of joining every MQL entry of a period with its lead's later
-- moves (3.5 s at a million leads) and finding each outcome's latest MQL move (2.4 s). Triggers
-- on `stage_history` inserts keep them (stage moves are rare beside events, which run none of
-- them) and on the leads' stage or merge, so that they are always equal to a walk of the moves
-- themselves (checked by `funnel::tests::the_kept_counts_equal_a_recount_after_every_write`).
-- Moves are never deleted nor moved to another lead (a merge leaves them with the merged lead).

-- One row per move to MQL (`stage_history_id`): its lead, its time, the time of the lead's
-- MQL move before it (by time, then id; null for its first), and the first time at or after it
-- the lead moved to each later stage of the funnel. A period's cohort is the rows of the period
-- whose previous MQL move is before the period: each lead's first entry in it.
CREATE TABLE mql_cohorts (
    workspace_id     INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    stage_history_id INTEGER NOT NULL,
    lead_id          INTEGER NOT NULL,
    previous_at      INTEGER,
    sal              INTEGER,
    sql              INTEGER,
    opportunity      INTEGER,
    customer         INTEGER,
    PRIMARY KEY (workspace_id, at, stage_history_id)
) WITHOUT ROWID;
CREATE INDEX mql_cohorts_lead ON mql_cohorts (lead_id, at);

-- One row per move to an outcome (`customer`, `lost`, `disqualified`): whether its lead is in
-- that stage now and not merged (`current`, kept by the trigger on leads below), the time of
-- the lead's next move to the same stage (by time, then id; null for its last), and the lead's
-- latest MQL move at or before it (by time, then id) with its time. A period's outcomes are the
-- current rows of the period whose next move to the stage is after the period: each lead's
-- latest move to its stage in it.
CREATE TABLE outcome_moves (
    workspace_id     INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    stage_history_id INTEGER NOT NULL,
    lead_id          INTEGER NOT NULL,
    stage            TEXT NOT NULL,
    current          INTEGER NOT NULL,
    next_at          INTEGER,
    mql_move_id      INTEGER,
    mql_at           INTEGER,
    PRIMARY KEY (workspace_id, at, stage_history_id)
) WITHOUT ROWID;
CREATE INDEX outcome_moves_lead ON outcome_moves (lead_id, at);

-- A move to MQL: a cohort row whose later stages are the lead's moves at or after it, the next
-- MQL move of the lead (when this one was stored out of time order) now follows this one, and
-- the lead's outcome moves at or after it have it as their latest MQL move (its id is the
-- highest: among moves of the same time it is the latest).
CREATE TRIGGER mql_cohorts_mql AFTER INSERT ON stage_history WHEN NEW.stage = 'mql' BEGIN
    UPDATE mql_cohorts SET previous_at = NEW.at
        WHERE (workspace_id, at, stage_history_id) = (
            SELECT workspace_id, at, stage_history_id FROM mql_cohorts
            WHERE lead_id = NEW.lead_id AND at > NEW.at ORDER BY at, stage_history_id LIMIT 1
        );
    INSERT INTO mql_cohorts (workspace_id, at, stage_history_id, lead_id, previous_at, sal, sql, opportunity, customer)
        SELECT NEW.workspace_id, NEW.at, NEW.id, NEW.lead_id,
               (SELECT max(p.at) FROM mql_cohorts p WHERE p.lead_id = NEW.lead_id AND p.at <= NEW.at AND p.stage_history_id <> NEW.id),
               min(CASE WHEN s.stage = 'sal' THEN s.at END), min(CASE WHEN s.stage = 'sql' THEN s.at END),
               min(CASE WHEN s.stage = 'opportunity' THEN s.at END), min(CASE WHEN s.stage = 'customer' THEN s.at END)
        FROM stage_history s WHERE s.lead_id = NEW.lead_id AND s.at >= NEW.at;
    UPDATE outcome_moves SET mql_move_id = NEW.id, mql_at = NEW.at
        WHERE lead_id = NEW.lead_id AND at >= NEW.at AND (mql_at IS NULL OR mql_at <= NEW.at);
END;

-- A move to a later stage of the funnel: the first such move after each of the lead's MQL
-- moves before it.
CREATE TRIGGER mql_cohorts_later AFTER INSERT ON stage_history
WHEN NEW.stage IN ('sal', 'sql', 'opportunity', 'customer') BEGIN
    UPDATE mql_cohorts SET
        sal = CASE WHEN NEW.stage = 'sal' AND (sal IS NULL OR sal > NEW.at) THEN NEW.at ELSE sal END,
        sql = CASE WHEN NEW.stage = 'sql' AND (sql IS NULL OR sql > NEW.at) THEN NEW.at ELSE sql END,
        opportunity = CASE WHEN NEW.stage = 'opportunity' AND (opportunity IS NULL OR opportunity > NEW.at) THEN NEW.at ELSE opportunity END,
        customer = CASE WHEN NEW.stage = 'customer' AND (customer IS NULL OR customer > NEW.at) THEN NEW.at ELSE customer END
        WHERE lead_id = NEW.lead_id AND at <= NEW.at;
END;

-- A move to an outcome: the lead's move to the same stage before it (when this one was stored
-- out of time order, the one before it in time) is now followed by this one.
CREATE TRIGGER outcome_moves_insert AFTER INSERT ON stage_history
WHEN NEW.stage IN ('customer', 'lost', 'disqualified') BEGIN
    UPDATE outcome_moves SET next_at = NEW.at
        WHERE (workspace_id, at, stage_history_id) = (
            SELECT workspace_id, at, stage_history_id FROM outcome_moves
            WHERE lead_id = NEW.lead_id AND stage = NEW.stage AND at <= NEW.at AND stage_history_id <> NEW.id
            ORDER BY at DESC, stage_history_id DESC LIMIT 1
        );
    INSERT INTO outcome_moves (workspace_id, at, stage_history_id, lead_id, stage, current, next_at, mql_move_id, mql_at)
        SELECT NEW.workspace_id, NEW.at, NEW.id, NEW.lead_id, NEW.stage,
               coalesce((SELECT l.stage = NEW.stage AND l.merged_into IS NULL FROM leads l WHERE l.id = NEW.lead_id), 0),
               (SELECT min(n.at) FROM outcome_moves n WHERE n.lead_id = NEW.lead_id AND n.stage = NEW.stage AND n.at > NEW.at),
               m.stage_history_id, m.at
        FROM (SELECT 1) LEFT JOIN (
            SELECT stage_history_id, at FROM mql_cohorts WHERE lead_id = NEW.lead_id AND at <= NEW.at
            ORDER BY at DESC, stage_history_id DESC LIMIT 1
        ) m;
END;

-- A lead's stage is updated by its stage moves and merges only (the statement every event runs
-- leaves it out): its outcome moves are current while it stays in their stage unmerged.
CREATE TRIGGER outcome_moves_current AFTER UPDATE OF stage, merged_into ON leads
WHEN OLD.stage IS NOT NEW.stage OR OLD.merged_into IS NOT NEW.merged_into BEGIN
    UPDATE outcome_moves SET current = (stage = NEW.stage AND NEW.merged_into IS NULL) WHERE lead_id = NEW.id;
END;

INSERT INTO mql_cohorts (workspace_id, at, stage_history_id, lead_id, previous_at, sal, sql, opportunity, customer)
    SELECT m.workspace_id, m.at, m.id, m.lead_id,
           (SELECT max(p.at) FROM stage_history p
            WHERE p.lead_id = m.lead_id AND p.stage = 'mql' AND (p.at < m.at OR (p.at = m.at AND p.id < m.id))),
           min(CASE WHEN s.stage = 'sal' THEN s.at END), min(CASE WHEN s.stage = 'sql' THEN s.at END),
           min(CASE WHEN s.stage = 'opportunity' THEN s.at END), min(CASE WHEN s.stage = 'customer' THEN s.at END)
    FROM stage_history m JOIN stage_history s ON s.lead_id = m.lead_id AND s.at >= m.at
    WHERE m.stage = 'mql' AND m.workspace_id IS NOT NULL
    GROUP BY m.id;

INSERT INTO outcome_moves (workspace_id, at, stage_history_id, lead_id, stage, current, next_at, mql_move_id, mql_at)
    SELECT o.workspace_id, o.at, o.id, o.lead_id, o.stage,
           coalesce((SELECT l.stage = o.stage AND l.merged_into IS NULL FROM leads l WHERE l.id = o.lead_id), 0),
           (SELECT min(n.at) FROM stage_history n
            WHERE n.lead_id = o.lead_id AND n.stage = o.stage AND (n.at > o.at OR (n.at = o.at AND n.id > o.id))),
           m.id, m.at
    FROM stage_history o LEFT JOIN stage_history m ON m.id = (
        SELECT s.id FROM stage_history s WHERE s.lead_id = o.lead_id AND s.stage = 'mql' AND s.at <= o.at
          AND s.workspace_id IS NOT NULL ORDER BY s.at DESC, s.id DESC LIMIT 1
    )
    WHERE o.stage IN ('customer', 'lost', 'disqualified') AND o.workspace_id IS NOT NULL;
