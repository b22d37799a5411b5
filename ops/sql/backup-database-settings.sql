-- pggit-ops backup, restore, verify-backup: the settings stored for the
-- current database (ALTER DATABASE ... SET, and ALTER ROLE ... IN DATABASE
-- ... SET), one "role<TAB>name=value" line each (role empty for the whole
-- database). The migrations set search_path = pggit, public here, which is
-- what lets the guide's unqualified queries run; pg_dump does not dump
-- these settings, and pg_restore without --create does not restore them.
--
-- Run: psql pggit -A -t -F '|' -f ops/sql/backup-database-settings.sql
SELECT coalesce(r.rolname, ''), cfg
FROM pg_db_role_setting s
LEFT JOIN pg_roles r ON r.oid = s.setrole
CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
WHERE s.setdatabase = (SELECT oid FROM pg_database
                        WHERE datname = current_database())
ORDER BY 1, 2;
