-- The guide's Maintenance Tasks > Daily, step 4 ("Database integrity
-- check"), as written: tables per schema (pggit holds the product's six).
-- pggit-ops maintenance daily runs it; verify-backup runs it in a restore.
SELECT schemaname, COUNT(*) as table_count FROM pg_tables GROUP BY schemaname;
