-- 004_delivery_claim_index: the indexes the dispatcher's claim needs, and
-- no more (docs/delivery.md, "Costs per delivery").
--
-- * A claim takes due rows oldest first, by (next_attempt_at, id). With an
--   index on next_attempt_at alone, PostgreSQL read and sorted every due
--   row sharing a due time to find the first ones by id; the rows of alerts
--   inserted together share their transaction's now(), so a backlog of
--   10 000 such rows cost each claim about 25 ms, 100 000 rows 10 times
--   more. Ordered by both columns, a claim reads only the rows it locks.
-- * idx_delivery_claim_lease (lease_expires_at of in_progress rows) goes:
--   every claim and every lease renewal had to insert into it, for a query
--   that runs about once a second. The in_progress rows are the few the
--   engines hold; that query finds them through idx_delivery_status.
DROP INDEX pggit.idx_delivery_claim_due;
CREATE INDEX idx_delivery_claim_due
  ON pggit.alert_delivery_queue (next_attempt_at, id)
  WHERE delivery_status = 'pending';
DROP INDEX pggit.idx_delivery_claim_lease;
