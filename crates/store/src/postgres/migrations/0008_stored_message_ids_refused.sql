-- Fails the statement that calls it when `refused` holds a message id: the ingestion's write
-- (`postgres/ingested.rs::write_all_and_commit`) inserts its events with conflict detection and
-- passes the message ids it could not insert, those another request stored since its own read.
-- The write is sent together with the transaction's COMMIT, so the refusal has to come from
-- PostgreSQL: a failed statement aborts the transaction, and the COMMIT then rolls it back.
-- SQLSTATE LS409 is leadscore's own (`StoreError::RolledBack`).
CREATE FUNCTION leadscore_refuse_stored_message_ids(refused TEXT[]) RETURNS INTEGER
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(refused) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'LS409',
            MESSAGE = format('message id %s was stored by another request at the same time; send the request again',
                             to_json(refused[1]));
    END IF;
    RETURN 2;
END;
$$;
