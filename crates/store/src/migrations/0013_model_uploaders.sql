-- Who stored each model version: the API key (by its prefix) or the console account (by its
-- e-mail address) that uploaded it, or the command that installed it. Versions stored before
-- this was recorded keep NULL: the console shows them as not recorded.
ALTER TABLE models ADD COLUMN uploaded_by TEXT;
