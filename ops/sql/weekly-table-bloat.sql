-- Corrected: the operations guide (docs/OPERATIONS.md section 4),
-- Maintenance Tasks > Weekly Tasks, step 2 ("Table bloat check").
--
-- The guide's query reads schemaname, tablename, otta, cc and oppwidth from
-- pgstattuple_approx('webhooks'). Those are columns of a different, catalog-
-- statistics based bloat estimate; pgstattuple_approx() returns table_len,
-- scanned_percent, approx_tuple_count, approx_tuple_len,
-- approx_tuple_percent, dead_tuple_count, dead_tuple_len,
-- dead_tuple_percent, approx_free_space and approx_free_percent. As written
-- it fails with: column "schemaname" does not exist.
--
-- This version measures every table of the pggit schema (not only
-- webhooks). waste_ratio is the share of the table taken by dead tuples and
-- free space, in percent, as the guide's column meant. A small table is
-- mostly free space by nature: look at table_size before acting.
-- Needs the pgstattuple extension and the pg_stat_scan_tables role, which
-- ops/scripts/provision-db sets up.
--
-- Run: psql pggit -f ops/sql/weekly-table-bloat.sql
SELECT
    n.nspname AS schemaname,
    c.relname AS tablename,
    pg_size_pretty(s.table_len) AS table_size,
    round(s.dead_tuple_percent::numeric, 1) AS dead_tuple_percent,
    round(s.approx_free_percent::numeric, 1) AS free_percent,
    round((s.dead_tuple_percent + s.approx_free_percent)::numeric) AS waste_ratio
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pgstattuple_approx(c.oid) s
WHERE n.nspname = 'pggit'
  AND c.relkind IN ('r', 'm')
ORDER BY s.dead_tuple_len + s.approx_free_space DESC;
