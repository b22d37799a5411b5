-- pggit-ops verify-backup: the operations guide's unqualified queries, run
-- as the application role in the restored scratch database. They find
-- their tables only through the database's search_path (pggit, public), so
-- they prove that the restore brought the settings back, and that the
-- extensions and grants provision-db makes are there.
SELECT 'DB connected' AS status;
SELECT COUNT(*) FROM alert_delivery_queue WHERE delivery_status = 'pending';
SELECT webhook_id, COUNT(*) as pending_count
FROM alert_delivery_queue
WHERE delivery_status = 'pending'
GROUP BY webhook_id
ORDER BY pending_count DESC
LIMIT 10;
\ir daily-failed-deliveries.sql
EXPLAIN ANALYZE
SELECT * FROM webhooks
WHERE status = 'active'
ORDER BY created_at DESC
LIMIT 20;
\ir daily-tables-per-schema.sql
SELECT query, calls, total_exec_time, mean_exec_time
FROM pg_stat_statements
ORDER BY total_exec_time DESC
LIMIT 10;
SELECT count(*) FROM pgstattuple_approx('webhooks');
