-- 001_initial: the pggitops schema, version 1 (CONTRACT section 4).
--
-- Applied by the migration runner (`pggit-api migrate`, pggitops::Migrate)
-- in one transaction, under an advisory lock, as the owner of the database
-- (the unprivileged `pggit` role). The runner has already created the schema
-- `pggit` and pggit.schema_migrations. Every name is schema-qualified so the
-- file does not depend on the session's search_path.
--
-- NOTE: never edit this file once released: the runner records a checksum of
-- every applied migration and refuses to run when it changes. Add
-- 002_<name>.sql instead.

-- The guide's SQL is unqualified (`psql pggit -c "SELECT ... FROM
-- alert_delivery_queue"`): make pggit the database's default schema. Takes
-- effect for new sessions.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET search_path = pggit, public',
                 current_database());
END
$$;

------------------------------------------------------------------------------
-- webhooks: the receivers. Soft-deleted (deleted_at) so history stays.
------------------------------------------------------------------------------
CREATE TABLE pggit.webhooks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL
    CONSTRAINT webhooks_name_length CHECK (char_length(name) BETWEEN 1 AND 255),
  url text NOT NULL
    CONSTRAINT webhooks_url_length CHECK (char_length(url) <= 2048)
    CONSTRAINT webhooks_url_http CHECK (url ~* '^https?://[^/?#[:space:]]+'
                                        AND url !~ '[[:space:]]'),
  description text
    CONSTRAINT webhooks_description_length CHECK (char_length(description) <= 1000),
  -- The operator's switch; kept in step with status by webhooks_sync_status.
  is_active boolean NOT NULL DEFAULT true,
  -- active: receives deliveries; inactive: switched off by the operator;
  -- disabled: switched off by the delivery engine after sustained failure
  -- (or HTTP 410), until the operator sets is_active = true again.
  status text NOT NULL DEFAULT 'active'
    CONSTRAINT webhooks_status_valid
      CHECK (status IN ('active', 'inactive', 'disabled')),
  disabled_reason text,
  disabled_at timestamptz,
  -- Signing key (whsec_...); never returned by the API after creation.
  secret text NOT NULL
    CONSTRAINT webhooks_secret_nonempty CHECK (char_length(secret) > 0),
  -- Empty array = every severity / operation type.
  filter_severities text[] NOT NULL DEFAULT '{}'
    CONSTRAINT webhooks_filter_severities_valid
      CHECK (filter_severities <@ ARRAY['INFO', 'WARNING', 'CRITICAL']),
  filter_operation_types text[] NOT NULL DEFAULT '{}'
    CONSTRAINT webhooks_filter_operation_types_valid
      CHECK (array_position(filter_operation_types, NULL) IS NULL),
  -- Retry policy: max_retries counts retries after the first attempt.
  max_retries integer NOT NULL DEFAULT 3
    CONSTRAINT webhooks_max_retries_range CHECK (max_retries BETWEEN 0 AND 20),
  backoff_base double precision NOT NULL DEFAULT 2
    CONSTRAINT webhooks_backoff_base_range CHECK (backoff_base BETWEEN 1 AND 10),
  max_backoff integer NOT NULL DEFAULT 3600
    CONSTRAINT webhooks_max_backoff_range CHECK (max_backoff BETWEEN 1 AND 86400),
  timeout_seconds integer NOT NULL DEFAULT 30
    CONSTRAINT webhooks_timeout_seconds_range CHECK (timeout_seconds BETWEEN 1 AND 60),
  ssl_verify boolean NOT NULL DEFAULT true,
  -- Circuit breaker, shared by every daemon instance.
  breaker_state text NOT NULL DEFAULT 'closed'
    CONSTRAINT webhooks_breaker_state_valid
      CHECK (breaker_state IN ('closed', 'open', 'half_open')),
  consecutive_failures integer NOT NULL DEFAULT 0
    CONSTRAINT webhooks_consecutive_failures_nonnegative
      CHECK (consecutive_failures >= 0),
  breaker_open_until timestamptz,
  breaker_open_seconds integer
    CONSTRAINT webhooks_breaker_open_seconds_positive
      CHECK (breaker_open_seconds > 0),
  -- Start of the current run of failures (NULL after a success).
  failing_since timestamptz,
  last_success_at timestamptz,
  last_failure_at timestamptz,
  total_deliveries bigint NOT NULL DEFAULT 0
    CONSTRAINT webhooks_total_deliveries_nonnegative CHECK (total_deliveries >= 0),
  total_failures bigint NOT NULL DEFAULT 0
    CONSTRAINT webhooks_total_failures_nonnegative CHECK (total_failures >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  deleted_at timestamptz
);

-- A name is unique among the webhooks that are not deleted.
CREATE UNIQUE INDEX webhooks_name_key ON pggit.webhooks (name)
  WHERE deleted_at IS NULL;
-- The guide's index (its CREATE INDEX CONCURRENTLY answers "already exists").
CREATE INDEX idx_webhook_status ON pggit.webhooks (status);

-- Keeps status and is_active in step, whoever writes them (the API, the
-- engine or `UPDATE webhooks SET is_active = false` from the guide):
--   is_active set to false            -> status 'inactive'
--   is_active set to true             -> status 'active' (re-enables 'disabled')
--   status changed to 'inactive'      -> is_active false
--   status changed to 'active'        -> is_active true
--   status changed to 'disabled'      -> is_active unchanged
-- "Set" means named in the UPDATE's SET list, even to its current value:
-- `UPDATE webhooks SET is_active = true` re-enables a disabled webhook whose
-- is_active was never switched off (webhooks_apply_is_active). Writers must
-- therefore name is_active only when they mean to switch it. When both are
-- set in one UPDATE, is_active (the operator's switch) wins.
-- A webhook that becomes active starts afresh: closed breaker, no failure
-- run, no disabled reason. updated_at moves when the configuration changes,
-- not when the engine records delivery statistics.
CREATE FUNCTION pggit.webhooks_sync_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status = 'inactive' THEN
      NEW.is_active := false;
    ELSIF NEW.status = 'active' AND NOT NEW.is_active THEN
      NEW.status := 'inactive';
    END IF;
  ELSE
    IF NEW.is_active IS DISTINCT FROM OLD.is_active THEN
      NEW.status := CASE WHEN NEW.is_active THEN 'active' ELSE 'inactive' END;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
      IF NEW.status = 'inactive' THEN
        NEW.is_active := false;
      ELSIF NEW.status = 'active' THEN
        NEW.is_active := true;
      END IF;
    END IF;
  END IF;

  IF NEW.status = 'disabled' THEN
    IF TG_OP = 'INSERT' OR OLD.status <> 'disabled' THEN
      NEW.disabled_at := coalesce(NEW.disabled_at, now());
    END IF;
  ELSE
    NEW.disabled_at := NULL;
    NEW.disabled_reason := NULL;
  END IF;

  IF TG_OP = 'UPDATE' THEN
    IF NEW.status = 'active' AND OLD.status <> 'active' THEN
      NEW.breaker_state := 'closed';
      NEW.consecutive_failures := 0;
      NEW.breaker_open_until := NULL;
      NEW.breaker_open_seconds := NULL;
      NEW.failing_since := NULL;
    END IF;
    IF (NEW.name, NEW.url, NEW.description, NEW.is_active, NEW.status,
        NEW.secret, NEW.filter_severities, NEW.filter_operation_types,
        NEW.max_retries, NEW.backoff_base, NEW.max_backoff,
        NEW.timeout_seconds, NEW.ssl_verify, NEW.deleted_at)
       IS DISTINCT FROM
       (OLD.name, OLD.url, OLD.description, OLD.is_active, OLD.status,
        OLD.secret, OLD.filter_severities, OLD.filter_operation_types,
        OLD.max_retries, OLD.backoff_base, OLD.max_backoff,
        OLD.timeout_seconds, OLD.ssl_verify, OLD.deleted_at) THEN
      NEW.updated_at := now();
    END IF;
  END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION pggit.webhooks_apply_is_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.status := CASE WHEN NEW.is_active THEN 'active' ELSE 'inactive' END;
  RETURN NEW;
END
$$;

-- BEFORE triggers fire in name order: apply_is_active, then sync_status.
CREATE TRIGGER webhooks_apply_is_active
  BEFORE UPDATE OF is_active ON pggit.webhooks
  FOR EACH ROW EXECUTE FUNCTION pggit.webhooks_apply_is_active();
CREATE TRIGGER webhooks_sync_status
  BEFORE INSERT OR UPDATE ON pggit.webhooks
  FOR EACH ROW EXECUTE FUNCTION pggit.webhooks_sync_status();

------------------------------------------------------------------------------
-- alerts: what producers insert (API, embedding application, any SQL).
------------------------------------------------------------------------------
CREATE TABLE pggit.alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  operation_type text NOT NULL
    CONSTRAINT alerts_operation_type_length
      CHECK (char_length(operation_type) BETWEEN 1 AND 255),
  severity text NOT NULL
    CONSTRAINT alerts_severity_valid
      CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
  message text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CONSTRAINT alerts_status_valid
      CHECK (status IN ('pending', 'acknowledged', 'resolved')),
  context jsonb NOT NULL DEFAULT '{}'
    CONSTRAINT alerts_context_object CHECK (jsonb_typeof(context) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  resolved_at timestamptz
);

-- The guide's index; also serves "newest first" listing.
CREATE INDEX idx_alert_created ON pggit.alerts (created_at DESC);
CREATE INDEX idx_alert_status ON pggit.alerts (status, created_at DESC);
CREATE INDEX idx_alert_severity ON pggit.alerts (severity, created_at DESC);

-- Stamps acknowledged_at / resolved_at when status moves there (however it
-- is changed) and keeps updated_at current.
CREATE FUNCTION pggit.alerts_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NEW.status = 'acknowledged' THEN
      NEW.acknowledged_at := coalesce(NEW.acknowledged_at, now());
    ELSIF NEW.status = 'resolved' THEN
      NEW.resolved_at := coalesce(NEW.resolved_at, now());
    END IF;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER alerts_touch
  BEFORE UPDATE ON pggit.alerts
  FOR EACH ROW EXECUTE FUNCTION pggit.alerts_touch();

------------------------------------------------------------------------------
-- alert_delivery_queue: one row per (alert, webhook), the durable queue.
------------------------------------------------------------------------------
CREATE TABLE pggit.alert_delivery_queue (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id bigint NOT NULL REFERENCES pggit.alerts (id) ON DELETE CASCADE,
  webhook_id bigint NOT NULL REFERENCES pggit.webhooks (id),
  delivery_status text NOT NULL DEFAULT 'pending'
    CONSTRAINT alert_delivery_queue_status_valid
      CHECK (delivery_status IN
             ('pending', 'in_progress', 'delivered', 'failed', 'cancelled')),
  attempt_count integer NOT NULL DEFAULT 0
    CONSTRAINT alert_delivery_queue_attempt_count_nonnegative
      CHECK (attempt_count >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- A claimed (in_progress) row belongs to lease_owner until
  -- lease_expires_at; after that any instance may claim it again.
  lease_owner text,
  lease_expires_at timestamptz,
  last_http_status integer,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  CONSTRAINT alert_delivery_queue_alert_webhook_key UNIQUE (alert_id, webhook_id),
  CONSTRAINT alert_delivery_queue_in_progress_leased
    CHECK (delivery_status <> 'in_progress'
           OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The guide's index.
CREATE INDEX idx_delivery_status
  ON pggit.alert_delivery_queue (delivery_status, created_at);
-- The claim query: due pending rows, and in_progress rows whose lease ran out.
CREATE INDEX idx_delivery_claim_due ON pggit.alert_delivery_queue (next_attempt_at)
  WHERE delivery_status = 'pending';
CREATE INDEX idx_delivery_claim_lease ON pggit.alert_delivery_queue (lease_expires_at)
  WHERE delivery_status = 'in_progress';
-- Per-webhook history (newest first) and the foreign key.
CREATE INDEX idx_delivery_webhook
  ON pggit.alert_delivery_queue (webhook_id, created_at DESC);

CREATE FUNCTION pggit.alert_delivery_queue_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  IF NEW.delivery_status = 'delivered' AND OLD.delivery_status <> 'delivered' THEN
    NEW.delivered_at := coalesce(NEW.delivered_at, now());
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER alert_delivery_queue_touch
  BEFORE UPDATE ON pggit.alert_delivery_queue
  FOR EACH ROW EXECUTE FUNCTION pggit.alert_delivery_queue_touch();

------------------------------------------------------------------------------
-- delivery_attempts: one row per HTTP attempt.
------------------------------------------------------------------------------
CREATE TABLE pggit.delivery_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL
    REFERENCES pggit.alert_delivery_queue (id) ON DELETE CASCADE,
  attempt integer NOT NULL
    CONSTRAINT delivery_attempts_attempt_positive CHECK (attempt >= 1),
  started_at timestamptz NOT NULL DEFAULT now(),
  duration_ms double precision
    CONSTRAINT delivery_attempts_duration_nonnegative CHECK (duration_ms >= 0),
  http_status integer,
  error text,
  -- At most 1 KiB (in bytes) of the response body.
  response_excerpt text
    CONSTRAINT delivery_attempts_excerpt_length
      CHECK (octet_length(response_excerpt) <= 1024)
);

CREATE INDEX idx_delivery_attempts_delivery
  ON pggit.delivery_attempts (delivery_id, attempt);

------------------------------------------------------------------------------
-- api_keys: hashes of the keys, never the keys.
------------------------------------------------------------------------------
CREATE TABLE pggit.api_keys (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL
    CONSTRAINT api_keys_name_key UNIQUE
    CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 255),
  -- Lower-case hex SHA-256 of the key.
  key_hash text NOT NULL
    CONSTRAINT api_keys_key_hash_key UNIQUE
    CONSTRAINT api_keys_key_hash_sha256 CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  -- The first characters of the key, shown by `keys list`.
  key_prefix text NOT NULL
    CONSTRAINT api_keys_key_prefix_length CHECK (char_length(key_prefix) BETWEEN 1 AND 32),
  scopes text[] NOT NULL
    CONSTRAINT api_keys_scopes_valid
      CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

------------------------------------------------------------------------------
-- Webhook deletion cancels the webhook's pending deliveries (history stays).
------------------------------------------------------------------------------
CREATE FUNCTION pggit.webhooks_cancel_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE pggit.alert_delivery_queue
     SET delivery_status = 'cancelled',
         last_error = coalesce(last_error, 'webhook deleted')
   WHERE webhook_id = NEW.id AND delivery_status = 'pending';
  RETURN NULL;
END
$$;

CREATE TRIGGER webhooks_cancel_deleted
  AFTER UPDATE OF deleted_at ON pggit.webhooks
  FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
  EXECUTE FUNCTION pggit.webhooks_cancel_deleted();

------------------------------------------------------------------------------
-- The one fan-out path. Whoever inserts alerts (POST /api/v1/alerts, an
-- embedding application, a pgGit function, psql), this statement-level
-- trigger queues one delivery per matching active webhook in the inserting
-- transaction, then notifies:
--   pggit_deliveries  (empty payload) when anything was queued: wakes the
--                     dispatchers; duplicates within a transaction collapse.
--   pggit_alerts      {"id": N} per alert, for live streams.
-- Notifications are delivered at commit, so a rolled-back insert wakes no one.
-- SECURITY DEFINER (owned by the migrating role) so a producer needs only
-- INSERT on alerts.
------------------------------------------------------------------------------
CREATE FUNCTION pggit.alerts_fan_out() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pggit, pg_temp AS $$
DECLARE
  queued bigint;
BEGIN
  INSERT INTO pggit.alert_delivery_queue (alert_id, webhook_id)
  SELECT a.id, w.id
    FROM new_alerts a
    JOIN pggit.webhooks w
      ON w.status = 'active' AND w.is_active AND w.deleted_at IS NULL
     AND (cardinality(w.filter_severities) = 0
          OR a.severity = ANY (w.filter_severities))
     AND (cardinality(w.filter_operation_types) = 0
          OR a.operation_type = ANY (w.filter_operation_types))
   ORDER BY a.id, w.id;
  GET DIAGNOSTICS queued = ROW_COUNT;
  IF queued > 0 THEN
    PERFORM pg_notify('pggit_deliveries', '');
  END IF;
  PERFORM pg_notify('pggit_alerts', jsonb_build_object('id', a.id)::text)
     FROM new_alerts a
    ORDER BY a.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER alerts_fan_out
  AFTER INSERT ON pggit.alerts
  REFERENCING NEW TABLE AS new_alerts
  FOR EACH STATEMENT EXECUTE FUNCTION pggit.alerts_fan_out();
