-- The dispatcher looks for each webhook's next notifications separately, so that a receiver
-- with a backlog (one that never answers gathers due notifications faster than it times them
-- out) is not read past every time another webhook's notification is looked for: pending
-- notifications are indexed by webhook, then by when they are due.
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (webhook_id, next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
