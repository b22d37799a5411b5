-- The guide's Maintenance Tasks > Daily, step 5 ("Failed webhooks (last
-- 24h)"), as written: failed deliveries per webhook. pggit-ops maintenance
-- daily runs it; verify-backup runs it in a restore.
SELECT webhook_id, COUNT(*) as failure_count
FROM alert_delivery_queue
WHERE delivery_status = 'failed'
AND created_at > CURRENT_TIMESTAMP - INTERVAL '24 hours'
GROUP BY webhook_id
ORDER BY failure_count DESC
LIMIT 5;
