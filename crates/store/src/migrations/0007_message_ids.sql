-- The message ids that make ingestion idempotent move out of `events` into their own index,
-- which the writer fills in key order (see crates/store/src/message_ids.rs): the unique index
-- on `events` took each insert of a random id (Segment's libraries send UUIDs) at a random
-- place, so every commit wrote about one index page per event.
--
-- message_ids: every stored (workspace, message id) but the newest, which the writer keeps in
-- memory until a sweep moves them here;
-- message_ids_merged.through: every event up to this id has its message id in `message_ids`;
-- the writer rebuilds its in-memory part from the events after it.

CREATE TABLE events_without_unique (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    message_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    properties    TEXT NOT NULL DEFAULT '{}',
    previous_id   INTEGER
);
INSERT INTO events_without_unique (id, workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id)
    SELECT id, workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_without_unique RENAME TO events;

-- hash: a fixed 64-bit hash of the workspace and message id (crates/store/src/message_ids.rs),
-- first in the key so that the ids of a sweep's slice are close together whatever their form;
-- the index is filled from the events by the same migration, in Rust.
CREATE TABLE message_ids (
    hash          INTEGER NOT NULL,
    workspace_id  INTEGER NOT NULL,
    message_id    TEXT NOT NULL,
    PRIMARY KEY (hash, workspace_id, message_id)
) WITHOUT ROWID;

CREATE TABLE message_ids_merged (through INTEGER NOT NULL);
INSERT INTO message_ids_merged (through) SELECT coalesce(max(id), 0) FROM events;
