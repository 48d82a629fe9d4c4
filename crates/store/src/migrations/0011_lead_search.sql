-- The leads list at a million leads: a text search on e-mail, name and company, and a tier
-- filter that reads only the tier's leads.
--
-- lead_search: per lead (rowid = leads.id), its e-mail, name (or first and last names) and
-- company, one per line, indexed by trigrams (FTS5 `trigram`: any substring of 3 or more
-- characters, case-insensitive for every script FTS5 folds, Cyrillic included). The triggers keep
-- it whoever writes a lead; an update that leaves the e-mail and attributes as they were (every
-- event) changes nothing in it.
CREATE VIRTUAL TABLE lead_search USING fts5(text, tokenize = 'trigram');

INSERT INTO lead_search (rowid, text)
    SELECT id, text FROM (
        SELECT id, trim(
            coalesce(email, '') || char(10) ||
            coalesce(json_extract(attributes, '$.name'), '') || char(10) ||
            trim(coalesce(json_extract(attributes, '$.first_name'), '') || ' ' ||
                 coalesce(json_extract(attributes, '$.last_name'), '')) || char(10) ||
            coalesce(json_extract(attributes, '$.company'), ''),
            char(10)) AS text
        FROM leads WHERE merged_into IS NULL)
    WHERE text != '';

CREATE TRIGGER lead_search_insert AFTER INSERT ON leads
WHEN new.email IS NOT NULL OR new.attributes != '{}'
BEGIN
    INSERT INTO lead_search (rowid, text) VALUES (new.id, trim(
        coalesce(new.email, '') || char(10) ||
        coalesce(json_extract(new.attributes, '$.name'), '') || char(10) ||
        trim(coalesce(json_extract(new.attributes, '$.first_name'), '') || ' ' ||
             coalesce(json_extract(new.attributes, '$.last_name'), '')) || char(10) ||
        coalesce(json_extract(new.attributes, '$.company'), ''),
        char(10)));
END;

CREATE TRIGGER lead_search_update AFTER UPDATE OF email, attributes ON leads
WHEN old.email IS NOT new.email OR old.attributes IS NOT new.attributes
BEGIN
    DELETE FROM lead_search WHERE rowid = old.id;
    INSERT INTO lead_search (rowid, text) VALUES (new.id, trim(
        coalesce(new.email, '') || char(10) ||
        coalesce(json_extract(new.attributes, '$.name'), '') || char(10) ||
        trim(coalesce(json_extract(new.attributes, '$.first_name'), '') || ' ' ||
             coalesce(json_extract(new.attributes, '$.last_name'), '')) || char(10) ||
        coalesce(json_extract(new.attributes, '$.company'), ''),
        char(10)));
END;

CREATE TRIGGER lead_search_delete AFTER DELETE ON leads
BEGIN
    DELETE FROM lead_search WHERE rowid = old.id;
END;

-- A tier's leads in score order, so that filtering by a low tier does not walk the higher ones.
CREATE INDEX lead_scores_tier_rank ON lead_scores (score, tier, value);
