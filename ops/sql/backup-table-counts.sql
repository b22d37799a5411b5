-- pggit-ops backup, restore, verify-backup: the rows of every table of the
-- current database that pg_dump dumps (ordinary tables outside the system
-- schemas that no extension owns), one "schema.table<TAB>rows" line each.
-- backup runs it in the transaction whose snapshot pg_dump uses, so the
-- manifest's counts are exactly the dump's.
--
-- Run: psql pggit -A -t -F '|' -f ops/sql/backup-table-counts.sql
SELECT format('SELECT %L, count(*) FROM %I.%I',
              n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT FROM pg_depend d
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
\gexec
