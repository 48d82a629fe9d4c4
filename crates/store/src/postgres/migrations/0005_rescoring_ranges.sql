-- A rescoring's leads split into ranges of lead ids (`first_after` excluded to `until_lead_id`
-- included; the last range is open-ended), which the instances sharing the database take one at
-- a time (`FOR UPDATE SKIP LOCKED`), so that they rescore a workspace together. Each range records
-- how far it got (`after_lead_id`, `done`, then `finished_at`) in the transaction of each batch it writes;
-- `claimed_until` is the lease of the instance working on it, in the database's clock, renewed by
-- each batch, after which another instance may take the range over. A rescoring's progress is the
-- sum of its ranges'. As SQLite's migration 23.
CREATE TABLE rescoring_ranges (
    workspace_id   BIGINT NOT NULL REFERENCES rescorings(workspace_id),
    first_after    BIGINT NOT NULL,
    until_lead_id  BIGINT NOT NULL,
    after_lead_id  BIGINT NOT NULL,
    done           BIGINT NOT NULL DEFAULT 0,
    finished_at    BIGINT,
    claimed_until  BIGINT,
    PRIMARY KEY (workspace_id, first_after)
);

-- Each rescoring so far went through its leads in one pass: it becomes one range, where it got.
INSERT INTO rescoring_ranges (workspace_id, first_after, until_lead_id, after_lead_id, done, finished_at)
SELECT workspace_id, 0, 9223372036854775807, after_lead_id, done, finished_at
FROM rescorings;

ALTER TABLE rescorings DROP COLUMN after_lead_id, DROP COLUMN done;
