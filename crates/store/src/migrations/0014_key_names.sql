-- A name for each API key, given when it is made ("website tracker", "CRM sync"), so that a
-- list of keys says what each is for; keys made before have none.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
