-- pggit-ops incident high-latency: the guide's Incident Response > High
-- Latency, step 5 ("Check slow queries"), for this database only (the
-- guide's reads pg_stat_statements of every database). Statements whose
-- mean time is above :slow_ms milliseconds (default 1000, the guide's).
-- Needs pg_stat_statements (ops/scripts/provision-db creates it; the server
-- must preload it).
--
-- Run: psql pggit -f ops/sql/incident-slow-statements.sql [-v slow_ms=500]
\if :{?slow_ms}
\else
  \set slow_ms 1000
\endif
SELECT round(mean_exec_time::numeric, 1) AS mean_ms,
       round(max_exec_time::numeric, 1) AS max_ms,
       calls,
       left(regexp_replace(query, '\s+', ' ', 'g'), 200) AS query
FROM pg_stat_statements
WHERE mean_exec_time > :slow_ms
  AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY mean_exec_time DESC
LIMIT 5;
