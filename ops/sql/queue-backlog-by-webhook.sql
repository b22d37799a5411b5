-- pggit-ops incident queue-backlog: the guide's Incident Response > Webhook
-- Queue Backlog, step 3 ("Identify problematic webhooks"),
--   SELECT webhook_id, COUNT(*) as pending_count FROM alert_delivery_queue
--   WHERE delivery_status = 'pending' GROUP BY webhook_id
--   ORDER BY pending_count DESC LIMIT 10;
-- with what it takes to judge each webhook: its name, status and breaker,
-- how many of its pending deliveries are due now, the oldest one's age, the
-- next attempt, and the last HTTP status and error of its deliveries.
--
-- Run: psql pggit -A -F '|' -f ops/sql/queue-backlog-by-webhook.sql
SELECT q.webhook_id,
       w.name,
       w.status,
       w.breaker_state,
       w.consecutive_failures,
       count(*) AS pending_count,
       count(*) FILTER (WHERE q.next_attempt_at <= now()) AS due_now,
       round(extract(epoch FROM now() - min(q.created_at))::numeric)
         AS oldest_seconds,
       round(greatest(extract(epoch FROM min(q.next_attempt_at) - now()), 0)
             ::numeric) AS next_attempt_in_seconds,
       coalesce((array_agg(q.last_http_status ORDER BY q.updated_at DESC)
                  FILTER (WHERE q.last_http_status IS NOT NULL))[1]::text, '')
         AS last_http_status,
       left(regexp_replace(coalesce((array_agg(q.last_error
                                      ORDER BY q.updated_at DESC)
                  FILTER (WHERE q.last_error IS NOT NULL))[1], ''),
                           '\s+', ' ', 'g'), 200) AS last_error
FROM alert_delivery_queue q
JOIN webhooks w ON w.id = q.webhook_id
WHERE q.delivery_status = 'pending'
GROUP BY q.webhook_id, w.name, w.status, w.breaker_state,
         w.consecutive_failures
ORDER BY pending_count DESC
LIMIT 10;
