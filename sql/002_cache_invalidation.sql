-- 002_cache_invalidation: tell every daemon's cache when cached data changes
-- in the database, whoever changes it (the API, the delivery engine, or an
-- operator's `UPDATE webhooks SET is_active = false` in psql).
--
-- After a statement that changed at least one row, these triggers send
--   NOTIFY pggit_cache, '<pattern>'
-- for the cache key families the table feeds (see docs/cache.md):
--   webhooks   what an operator sees change: insert, delete, and updates of
--              the configuration, is_active or status (disabled by the
--              engine)                                -> webhooks:*, dashboard:*
--   alerts     any change                             -> alerts:*, dashboard:*
--   alert_delivery_queue  a delivery changing status  -> alerts:item:<id> of
--              its alert (alerts:* when one statement touches more than 100
--              alerts)
-- The delivery engine's own bookkeeping (claims and lease renewals that keep
-- the status, breaker state, counters, last_used_at) sends nothing: under
-- delivery load it would otherwise empty these families many times a
-- second on every instance. Lists therefore show delivery counts and
-- webhook health figures up to their TTL old (CACHE_TTL_ALERTS_LIST,
-- CACHE_TTL_WEBHOOK_LIST); an alert's own page is always current.
--
-- Each daemon LISTENs on pggit_cache and passes the payload to
-- Cache::ApplyDatabaseNotification. Notifications are delivered at commit
-- (a rolled-back change invalidates nothing) and PostgreSQL collapses
-- identical ones within a transaction. Statement-level with transition
-- tables: a statement that touches no row (an idle claim query) sends
-- nothing.
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

-- An UPDATE of webhooks that an operator can see: anything but the engine's
-- bookkeeping (breaker, counters, last_used_at, updated_at alone).
CREATE OR REPLACE FUNCTION pggit.webhooks_cache_notify_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.name, n.url, n.description, n.is_active, n.status,
           n.disabled_reason, n.disabled_at, n.secret, n.filter_severities,
           n.filter_operation_types, n.max_retries, n.backoff_base,
           n.max_backoff, n.timeout_seconds, n.ssl_verify, n.deleted_at)
      IS DISTINCT FROM
          (o.name, o.url, o.description, o.is_active, o.status,
           o.disabled_reason, o.disabled_at, o.secret, o.filter_severities,
           o.filter_operation_types, o.max_retries, o.backoff_base,
           o.max_backoff, o.timeout_seconds, o.ssl_verify, o.deleted_at))
  THEN
    PERFORM pg_notify('pggit_cache', 'webhooks:*');
    PERFORM pg_notify('pggit_cache', 'dashboard:*');
  END IF;
  RETURN NULL;
END
$$;

-- Deliveries that changed status: the pages of their alerts. TG_OP tells
-- which transition tables exist.
CREATE OR REPLACE FUNCTION pggit.delivery_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
  alert_id bigint;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    SELECT array_agg(DISTINCT n.alert_id) INTO ids
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.delivery_status IS DISTINCT FROM o.delivery_status;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT n.alert_id) INTO ids FROM new_rows n;
  ELSE
    SELECT array_agg(DISTINCT o.alert_id) INTO ids FROM old_rows o;
  END IF;
  IF ids IS NULL THEN
    RETURN NULL;
  END IF;
  IF cardinality(ids) > 100 THEN
    PERFORM pg_notify('pggit_cache', 'alerts:*');
  ELSE
    FOREACH alert_id IN ARRAY ids LOOP
      PERFORM pg_notify('pggit_cache', 'alerts:item:' || alert_id);
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

-- A trigger with transition tables serves one event, hence three per table.
CREATE OR REPLACE TRIGGER webhooks_cache_insert
  AFTER INSERT ON pggit.webhooks REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_changed('webhooks', 'dashboard');
CREATE OR REPLACE TRIGGER webhooks_cache_update
  AFTER UPDATE ON pggit.webhooks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.webhooks_cache_notify_update();
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
  AFTER INSERT ON pggit.alert_delivery_queue REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.delivery_cache_notify();
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_update
  AFTER UPDATE ON pggit.alert_delivery_queue
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.delivery_cache_notify();
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_delete
  AFTER DELETE ON pggit.alert_delivery_queue REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.delivery_cache_notify();
CREATE OR REPLACE TRIGGER alert_delivery_queue_cache_truncate
  AFTER TRUNCATE ON pggit.alert_delivery_queue
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.cache_notify_truncated('alerts', 'dashboard');
