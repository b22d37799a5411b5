-- pggit-ops incident high-latency and pool-exhausted: the sessions of this
-- database (not this one), what each runs, for how long, which strong
-- locks it holds and which sessions block it.
--
-- Corrects the guide's Incident Response > Database Connection Pool
-- Exhausted, step 2 ("Identify long-running queries"):
--   SELECT pid, usename, query, query_start FROM pg_stat_activity
--   WHERE query != '<idle>' ORDER BY query_start DESC;
-- Since PostgreSQL 9.2 an idle session shows its last query, not '<idle>'
-- (its `state` says idle), so that filter keeps every session; and it lists
-- the sessions of every database on the server, not only this one.
--
-- Run: psql pggit -A -F '|' -f ops/sql/incident-sessions.sql
SELECT a.pid,
       coalesce(a.usename, '') AS usename,
       coalesce(a.application_name, '') AS application_name,
       coalesce(host(a.client_addr), 'local') AS client,
       coalesce(a.state, '') AS state,
       round(extract(epoch FROM now() - a.state_change)::numeric, 1)
         AS state_seconds,
       CASE WHEN a.state = 'active'
            THEN round(extract(epoch FROM now() - a.query_start)::numeric, 1)
       END AS query_seconds,
       coalesce(a.wait_event_type, '') AS wait_event_type,
       array_to_string(pg_blocking_pids(a.pid), ',') AS blocked_by,
       coalesce((SELECT string_agg(DISTINCT l.mode || ' on '
                                   || l.relation::regclass::text, ', ')
                   FROM pg_locks l
                  WHERE l.pid = a.pid AND l.granted
                    AND l.relation IS NOT NULL
                    AND l.database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                    AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock',
                                   'ExclusiveLock', 'AccessExclusiveLock')),
                '') AS strong_locks,
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 200)
         AS query
FROM pg_stat_activity a
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
ORDER BY a.state_change;
