-- Several instances may send the outbox's notifications: each claims those it sends until a lease
-- ends, so that no other sends them meanwhile, and recording the attempt ends the claim. A claim
-- whose lease has ended (its instance stopped) is taken again.
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
-- The claims running, counted against each webhook's share of notifications sent at once.
CREATE INDEX outbox_claimed ON outbox (webhook_id, claimed_until)
    WHERE claimed_until IS NOT NULL AND delivered_at IS NULL AND failed_at IS NULL;
