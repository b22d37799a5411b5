-- 003_queue_autovacuum: keep the queue tables small under churn.
--
-- Every delivery row is updated several times in its life (claim, lease
-- renewal, completion, retries), and each update leaves a dead tuple in the
-- table and in the indexes it touches (status, due time and lease time are
-- all indexed, so these updates cannot be HOT). PostgreSQL's default
-- autovacuum waits until 20 % of a table is dead: on a queue of a million
-- delivered rows that is 200 000 dead tuples that the claim query's index
-- scans wade through. These settings vacuum after 1 % (at least 1 000 rows)
-- instead, and analyze after 2 %, so the planner keeps seeing a small
-- pending set. The retention purge (WEBHOOK_RETENTION_DAYS) deletes in
-- small batches for the same reason.
--
-- Per-table storage parameters; the owner (the pggit role) may set them.
ALTER TABLE pggit.alert_delivery_queue SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.05
);
ALTER TABLE pggit.delivery_attempts SET (
  autovacuum_vacuum_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.05
);
