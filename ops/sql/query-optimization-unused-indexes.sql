-- Corrected: the operations guide (docs/OPERATIONS.md section 4),
-- Performance Optimization > Query Optimization > Add Missing Indexes
-- ("Check missing indexes").
--
-- The guide selects tablename and indexname from pg_stat_user_indexes, which
-- has no such columns on any PostgreSQL release: they are relname (the
-- table) and indexrelname (the index); tablename/indexname are pg_indexes'
-- names. As written it fails with: column "tablename" does not exist.
-- The aliases keep the guide's column headings.
--
-- Run: psql pggit -f ops/sql/query-optimization-unused-indexes.sql
SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_scan
FROM pg_stat_user_indexes
WHERE idx_scan = 0
ORDER BY relname;
