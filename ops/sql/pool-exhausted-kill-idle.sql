-- Corrected: the operations guide (docs/OPERATIONS.md section 4), Incident
-- Response > Database Connection Pool Exhausted, step 3 ("Kill idle
-- connections (if safe)").
--
-- The guide's statement
--   SELECT pg_terminate_backend(pid) FROM pg_stat_activity
--   WHERE state = 'idle' AND query_start < NOW() - INTERVAL '5 minutes';
-- ends idle sessions of every database on the server: other applications'
-- too. This one ends only sessions of the current database (not its own),
-- idle for at least :idle_seconds (default 300, the guide's five minutes,
-- measured since the session became idle), and counts sessions idle in a
-- transaction as idle: those are the ones that hold a pool's connections
-- and their locks. pggit-api reconnects by itself (its pool checks idle
-- connections before use; its LISTEN session reconnects and polls once).
-- Run it as a role that may signal the sessions' roles (pggit has
-- pg_signal_backend for non-superusers; pggit-ops uses PGGIT_ADMIN_URL).
--
-- Run: psql pggit -f ops/sql/pool-exhausted-kill-idle.sql [-v idle_seconds=60]
\if :{?idle_seconds}
\else
  \set idle_seconds 300
\endif
SELECT pid,
       coalesce(usename, '') AS usename,
       coalesce(application_name, '') AS application_name,
       state,
       round(extract(epoch FROM now() - state_change)::numeric, 1)
         AS idle_seconds,
       pg_terminate_backend(pid) AS terminated
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND state IN ('idle', 'idle in transaction',
                'idle in transaction (aborted)')
  AND state_change < now() - make_interval(secs => :idle_seconds);
