-- pggit-ops incident high-latency --apply: cancels (pg_cancel_backend: the
-- running statement, not the session) the statements of this database,
-- from other sessions, that have run for at least :slow_seconds (default
-- 60). pggit-api's own statements stop at DATABASE_STATEMENT_TIMEOUT, so
-- what runs longer comes from elsewhere (a report, a psql session, a
-- migration) and is what holds the locks the daemon's requests wait for.
--
-- Run: psql pggit -f ops/sql/high-latency-cancel-slow.sql [-v slow_seconds=30]
\if :{?slow_seconds}
\else
  \set slow_seconds 60
\endif
SELECT pid,
       coalesce(usename, '') AS usename,
       coalesce(application_name, '') AS application_name,
       round(extract(epoch FROM now() - query_start)::numeric, 1) AS seconds,
       left(regexp_replace(query, '\s+', ' ', 'g'), 200) AS query,
       pg_cancel_backend(pid) AS cancelled
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND state = 'active'
  AND query_start < now() - make_interval(secs => :slow_seconds);
