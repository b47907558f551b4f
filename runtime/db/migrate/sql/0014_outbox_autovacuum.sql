-- The outbox is a queue: every row is inserted, updated once or twice and
-- deleted within the retention period. At the default thresholds (20 % of
-- the table) autovacuum and analyze run too seldom for it: dead entries
-- pile up in outbox_unsent, which every claim walks, and the statistics
-- say "no unsent rows" while thousands wait. Vacuum and analyze it after
-- a fixed number of changes instead.
ALTER TABLE outbox SET (
	autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 2000,
	autovacuum_vacuum_insert_scale_factor = 0,
	autovacuum_vacuum_insert_threshold = 2000,
	autovacuum_analyze_scale_factor = 0,
	autovacuum_analyze_threshold = 2000
);
