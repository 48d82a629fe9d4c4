-- The text a search of the leads list reads (`leads.search_text`, a generated column) computed by
-- a PL/pgSQL function instead of an SQL one, with the same result. PostgreSQL inlines an SQL
-- function into the column's expression, and does so again, parsing the function's text, each
-- time a statement that updates a lead's e-mail or attributes starts: every ingestion's save of
-- its leads did, 0.1 ms each (a third of an update of one lead, measured with pgbench). A PL/pgSQL
-- function is compiled once per connection, and the attributes are parsed once per row, not
-- once per field.
CREATE OR REPLACE FUNCTION lead_search_text(email TEXT, attributes TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    parsed json := attributes::json;
BEGIN
    RETURN btrim(
        coalesce(email, '') || E'\n' ||
        coalesce(lead_search_field(parsed, 'name'), '') || E'\n' ||
        btrim(coalesce(lead_search_field(parsed, 'first_name'), '') || ' ' ||
              coalesce(lead_search_field(parsed, 'last_name'), ''), ' ') || E'\n' ||
        coalesce(lead_search_field(parsed, 'company'), ''),
        E'\n');
END;
$$;
