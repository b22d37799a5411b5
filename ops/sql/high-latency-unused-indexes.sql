-- Corrected: the operations guide (docs/OPERATIONS.md section 4), Incident
-- Response > High Latency, step 6 ("If database is issue, check indexes").
--
-- Same mistake as the Query Optimization query: pg_stat_user_indexes has
-- relname and indexrelname, not tablename and indexname, so the guide's
-- query fails with: column "tablename" does not exist.
--
-- Run: psql pggit -f ops/sql/high-latency-unused-indexes.sql
SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_scan
FROM pg_stat_user_indexes
WHERE idx_scan = 0;
