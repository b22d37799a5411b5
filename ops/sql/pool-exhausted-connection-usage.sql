-- Corrected: the operations guide (docs/OPERATIONS.md section 4), Incident
-- Response > Database Connection Pool Exhausted, step 1 ("Check connection
-- usage").
--
-- The guide reads a max_conn column from pg_stat_activity, which has none,
-- so it fails with: column "max_conn" does not exist. The server-wide limit
-- is the max_connections setting; it is the same for every database.
--
-- Run: psql pggit -f ops/sql/pool-exhausted-connection-usage.sql
SELECT
    datname,
    count(*) AS connections,
    current_setting('max_connections')::int AS max_conn
FROM pg_stat_activity
GROUP BY datname
ORDER BY count(*) DESC;
