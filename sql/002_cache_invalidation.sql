-- 002_cache_invalidation: tell every daemon's cache when cached data changes
-- in the database, whoever changes it (the API, the delivery engine, or an
-- operator's `UPDATE webhooks SET is_active = false` in psql).
--
-- After a statement that changed at least one row, these triggers send
--   NOTIFY pggit_cache, '<family>:*'
-- once per cache key family the table feeds (see docs/cache.md):
--   webhooks              -> webhooks:*, dashboard:*
--   alerts                -> alerts:*, dashboard:*
--   alert_delivery_queue  -> alerts:*, dashboard:*  (delivery counts)
-- Each daemon LISTENs on pggit_cache and passes the payload to
-- Cache::ApplyDatabaseNotification. Notifications are delivered at commit
-- (a rolled-back change invalidates nothing) and PostgreSQL collapses
-- identical ones within a transaction, so a bulk UPDATE sends one per
-- family. Statement-level with transition tables: a statement that touches
-- no row (an idle claim query) sends nothing.
--
-- Idempotent (CREATE OR REPLACE), so it can also be applied by hand to a
-- database migrated before it existed.

CREATE OR REPLACE FUNCTION pggit.cache_notify_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  family text;
BEGIN
  IF EXISTS (SELECT 1 FROM changed) THEN
    FOREACH family IN ARRAY TG_ARGV LOOP
      PERFORM pg_notify('pggit_cache', family || ':*');
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pggit.cache_notify_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  family text;
BEGIN
  FOREACH family IN ARRAY TG_ARGV LOOP
    PERFORM pg_notify('pggit_cache', family || ':*');
  END LOOP;
  RETURN NULL;
END
$$;

-- A trigger with transition tables serves one event, hence three per table.
CREATE OR REPLACE TRIGGER webhooks_cache_insert
  AFTER INSERT ON pggit.webhooks REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('webhooks', 'dashboard');
CREATE OR REPLACE TRIGGER webhooks_cache_update
  AFTER UPDATE ON pggit.webhooks REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('webhooks', 'dashboard');
CREATE OR REPLACE TRIGGER webhooks_cache_delete
  AFTER DELETE ON pggit.webhooks REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('webhooks', 'dashboard');
CREATE OR REPLACE TRIGGER webhooks_cache_truncate
  AFTER TRUNCATE ON pggit.webhooks
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_truncated('webhooks', 'dashboard');

CREATE OR REPLACE TRIGGER alerts_cache_insert
  AFTER INSERT ON pggit.alerts REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alerts_cache_update
  AFTER UPDATE ON pggit.alerts REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alerts_cache_delete
  AFTER DELETE ON pggit.alerts REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alerts_cache_truncate
  AFTER TRUNCATE ON pggit.alerts
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_truncated('alerts', 'dashboard');

CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_insert
  AFTER INSERT ON pggit.alert_delivery_queue REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_update
  AFTER UPDATE ON pggit.alert_delivery_queue REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_delete
  AFTER DELETE ON pggit.alert_delivery_queue REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('alerts', 'dashboard');
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_truncate
  AFTER TRUNCATE ON pggit.alert_delivery_queue
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_truncated('alerts', 'dashboard');
