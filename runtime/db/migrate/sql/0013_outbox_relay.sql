-- The outbox relay (runtime/outbox/relay.go): a request is answered at
-- commit, and every function process relays committed events to the
-- broker right after. Relays in many processes take rows from one table,
-- so the order of events about one subject is kept here, not in memory:
--
--   seq      the order rows were added in. A later event about a subject
--            is added by a transaction that saw the earlier one committed
--            (both change the subject's row), so seq follows that order.
--   subject  the event's CloudEvents subject (a record, a vault, …); a row
--            is not sent while an earlier unsent row of its subject is in
--            flight or backing off. NULL: no order to keep.
ALTER TABLE outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE outbox ADD COLUMN subject text;

-- The relay's queue: unsent rows in the order they were added.
DROP INDEX outbox_unsent;
CREATE UNIQUE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
-- "Is an earlier event of this subject still unsent?"
CREATE INDEX outbox_unsent_subject ON outbox (subject, seq) WHERE sent_at IS NULL AND subject IS NOT NULL;
