-- A lead's events and a score's history are found by following links back from the newest row
-- instead of through indexes keyed by lead. Those indexes took one insert at a random place per
-- event, so every commit dirtied (and wrote to the WAL) about one index page per event; appending
-- rows and linking them dirties only the pages being appended to.
--
-- events.previous_id: the lead's event stored before this one (NULL for its first);
-- leads.last_event_id: the lead's newest event.
-- score_history.previous_id: the previous entry of the same lead and score;
-- lead_scores.history_id: the newest entry of that lead and score.

ALTER TABLE events ADD COLUMN previous_id INTEGER;
ALTER TABLE leads ADD COLUMN last_event_id INTEGER;
ALTER TABLE score_history ADD COLUMN previous_id INTEGER;
ALTER TABLE lead_scores ADD COLUMN history_id INTEGER;

CREATE TEMP TABLE event_links (id INTEGER PRIMARY KEY, previous_id INTEGER);
INSERT INTO event_links (id, previous_id)
    SELECT id, lag(id) OVER (PARTITION BY lead_id ORDER BY id) FROM events;
UPDATE events SET previous_id = l.previous_id FROM event_links l WHERE l.id = events.id;
UPDATE leads SET last_event_id = newest.id
    FROM (SELECT lead_id, max(id) AS id FROM events GROUP BY lead_id) AS newest WHERE newest.lead_id = leads.id;
DROP TABLE event_links;
DROP INDEX events_lead;

CREATE TEMP TABLE history_links (id INTEGER PRIMARY KEY, previous_id INTEGER);
INSERT INTO history_links (id, previous_id)
    SELECT id, lag(id) OVER (PARTITION BY lead_id, score ORDER BY id) FROM score_history;
UPDATE score_history SET previous_id = l.previous_id FROM history_links l WHERE l.id = score_history.id;
UPDATE lead_scores SET history_id = newest.id
    FROM (SELECT lead_id, score, max(id) AS id FROM score_history GROUP BY lead_id, score) AS newest
    WHERE newest.lead_id = lead_scores.lead_id AND newest.score = lead_scores.score;
DROP TABLE history_links;
DROP INDEX score_history_lead;
