-- Erasing a lead (a person's right to be forgotten) and keeping events for a limited time: a record of each erasure that keeps who
-- asked and when, never the values erased; and the suppression list, salted hashes of the erased
-- identifiers, which drops what arrives for them later until an admin lifts it.
--
-- The salt is the workspace's, random, made with its first erasure: the hashes can be matched
-- against arriving identifiers but not read back, nor compared across workspaces.
CREATE TABLE erasure_salts (
    workspace_id  INTEGER PRIMARY KEY REFERENCES workspaces(id),
    salt          BLOB NOT NULL
);

CREATE TABLE erasures (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    -- The lead's number (no personal data): a later read of it is told it was erased.
    lead_id       INTEGER NOT NULL,
    -- Who asked: `key N (name)`, `user E-MAIL` or `command line`.
    erased_by     TEXT NOT NULL,
    erased_at     INTEGER NOT NULL,
    -- What was erased: lead rows (the lead and the leads merged into it), events.
    leads         INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    -- The highest lead id erased (a merged lead's may be above the lead's): ids are never given
    -- again, so that a system keyed by lead id cannot take a new lead for an erased one.
    last_lead_id  INTEGER NOT NULL,
    lifted_at     INTEGER,
    lifted_by     TEXT
);
CREATE INDEX erasures_lead ON erasures (workspace_id, lead_id);
CREATE INDEX erasures_last_lead ON erasures (last_lead_id);

-- SHA-256 of the salt, the kind and the identifier (e-mails trimmed and in lower case).
CREATE TABLE suppressions (
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    hash          BLOB NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('user_id', 'anonymous_id', 'email')),
    erasure_id    INTEGER NOT NULL REFERENCES erasures(id),
    PRIMARY KEY (workspace_id, hash)
) WITHOUT ROWID;

-- Erased rows leave no copy in the index of names: FTS5 removes a deleted row's entries from its
-- index at once rather than recording the deletion beside them.
INSERT INTO lead_search (lead_search, rank) VALUES ('secure-delete', 1);

-- An erased lead's score history leaves the weekly counts too, as if it had never been written
-- (the counts stay equal to a recount; see `0015_funnel_counts.sql`).
CREATE TRIGGER score_history_counts_delete AFTER DELETE ON score_history
WHEN OLD.tier IS NOT OLD.previous_tier OR OLD.previous_id IS NULL BEGIN
    UPDATE tier_changes_by_week SET change = change - 1
        WHERE OLD.tier IS NOT NULL AND OLD.tier IS NOT OLD.previous_tier
          AND model_id = OLD.model_id AND score = OLD.score AND tier = OLD.tier
          AND week = 345600000 + ((OLD.at - 345600000) / 604800000) * 604800000;
    UPDATE tier_changes_by_week SET change = change + 1
        WHERE OLD.previous_tier IS NOT NULL AND OLD.tier IS NOT OLD.previous_tier
          AND model_id = OLD.model_id AND score = OLD.score AND tier = OLD.previous_tier
          AND week = 345600000 + ((OLD.at - 345600000) / 604800000) * 604800000;
    UPDATE first_scores_by_week SET scores = scores - 1
        WHERE OLD.previous_id IS NULL
          AND model_id = OLD.model_id AND score = OLD.score
          AND week = 345600000 + ((OLD.at - 345600000) / 604800000) * 604800000;
END;

-- An erasure deletes a lead's stage moves (the only deletion of moves) with its rows of
-- `mql_cohorts` and `outcome_moves` (`erasure::erase`), and their tiers at MQL here.
CREATE TRIGGER mql_move_tiers_delete AFTER DELETE ON stage_history WHEN OLD.stage = 'mql' BEGIN
    DELETE FROM mql_move_tiers WHERE stage_history_id = OLD.id;
END;

-- Retention: how long each workspace keeps events (none: forever). Older events are deleted in
-- the background and their leads rescored from what is left.
CREATE TABLE retention (
    workspace_id  INTEGER PRIMARY KEY REFERENCES workspaces(id),
    events_days   INTEGER NOT NULL CHECK (events_days > 0),
    set_at        INTEGER NOT NULL,
    set_by        TEXT NOT NULL
);
