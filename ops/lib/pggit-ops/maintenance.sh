# shellcheck shell=bash
# pggit-ops maintenance daily | weekly | monthly: the guide's maintenance
# checklists. What can be automated runs; the rest is printed as the
# checklist, with the figures that inform each item.

cmd_maintenance_usage() {
  cat <<'EOF'
usage: pggit-ops maintenance daily | weekly | monthly [--json]

daily    errors logged in the last 24 h (PGGIT_LOG_FILE, else the journal),
         disk space, the latest backup (warns when older than 26 h), the
         tables per schema (the guide's integrity check), webhook failures
         of the last 24 h, request figures and webhook health
weekly   VACUUM ANALYZE, table bloat (ops/sql/weekly-table-bloat.sql),
         REINDEX INDEX CONCURRENTLY idx_webhook_status, a test restore of
         the latest backup (verify-backup), the statements that took the
         most time (pg_stat_statements); then the checklist (slow query log,
         trends, dependency updates) with its figures. A timer runs it.
monthly  changes nothing: database and table sizes, growth over 30 days,
         bloat, unused indexes, pending package updates, the last backup
         verification, then the checklist (security updates, CLUSTER and
         other optimisation, capacity, documentation, disaster recovery
         drill).
Exit: 0 all fine, 1 an item needs a look, 2 a step failed.
EOF
}

cmd_maintenance() {
  [[ $# -eq 1 ]] || usage_error "maintenance needs one of daily, weekly, monthly"
  COMMAND="maintenance $1"
  load_connections || return 0
  case $1 in
    daily) maintenance_daily ;;
    weekly) maintenance_weekly ;;
    monthly) maintenance_monthly ;;
    *) usage_error "maintenance: daily, weekly or monthly, not '$1'" ;;
  esac
}

checklist() { say "[ ] $*"; }

# Errors of the last 24 hours: JSON lines of PGGIT_LOG_FILE, or the journal.
review_errors() {
  local file since lines n
  file=$(setting PGGIT_LOG_FILE)
  since=$(date -u -d '24 hours ago' +%Y-%m-%dT%H:%M:%S)
  if [[ -n $file && -r $file ]]; then
    lines=$(jq -cR --arg since "$since" 'fromjson? | select(.level == "ERROR"
      and (.time // "") >= $since)' "$file" 2>/dev/null)
    n=$(grep -c . <<<"$lines")
    data_set errors "$(jq -sc '.[-5:]' <<<"$lines")"
    if [[ $n -gt 0 ]]; then
      report warn "errors" "$n error(s) in $file in the last 24 h; the last: $(tail -n 1 <<<"$lines" | jq -r '.msg // .message // .' 2>/dev/null)"
    else
      report ok "errors" "no error in $file in the last 24 h"
    fi
    return 0
  fi
  lines=$("${PGGIT_OPS_JOURNALCTL:-journalctl}" -u "$(service_unit)" \
    --since '24 hours ago' -p err --no-pager -o cat 2>/dev/null) || {
    report info "errors" "no readable PGGIT_LOG_FILE and no journal to read"
    return 0
  }
  n=$(grep -c . <<<"$lines")
  if [[ $n -gt 0 ]]; then
    report warn "errors" "$n error line(s) in journalctl -u $(service_unit) in the last 24 h"
  else
    report ok "errors" "no error in journalctl -u $(service_unit) in the last 24 h"
  fi
}

# The newest backup and its age.
check_latest_backup() {
  local file age
  file=$(latest_backup)
  if [[ -z $file ]]; then
    report warn "backup" "no backup in $(backup_dir): is pggit-ops-backup.timer enabled?"
    return 1
  fi
  age=$(($(date +%s) - $(stat -c %Y "$file")))
  data_set latest_backup "$(jq -cn --arg f "$file" --argjson a "$age" '{file: $f, age_seconds: $a}')"
  if [[ $age -gt $((26 * 3600)) ]]; then
    report warn "backup" "the latest backup is $((age / 3600)) h old: $file"
  else
    report ok "backup" "latest $file ($(du -h "$file" | cut -f1), $((age / 60)) min old)"
  fi
}

# query_rows NAME [FILE]: the rows of ops/sql/FILE (else of the SQL on
# stdin) as the application role; reports NAME critical when it fails.
query_rows() {
  local out rc=0
  if [[ -n ${2:-} ]]; then
    out=$(app_sql_file "$2" 2>&1) || rc=$?
  else
    out=$(app_sql 2>&1) || rc=$?
  fi
  if [[ $rc -ne 0 ]]; then
    report crit "$1" "$(head -n 1 <<<"$out")"
    return 1
  fi
  printf '%s' "$out"
}

maintenance_daily() {
  section "daily maintenance of $(app_target)"
  review_errors
  report_disk / "$(backup_dir)" "$(setting PGGIT_LOG_FILE /var/log/pggit/error.log)"
  check_latest_backup
  local out
  out=$(query_rows integrity daily-tables-per-schema.sql) || return 0
  out=$(sort <<<"$out")
  report ok "integrity" "tables per schema: $(awk -F"$US" '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$out")"
  out=$(query_rows failures daily-failed-deliveries.sql) || return 0
  if [[ -n $out ]]; then
    report warn "failures" "failed deliveries in the last 24 h by webhook: $(awk -F"$US" '{ printf "%s%s: %s", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$out")"
  else
    report ok "failures" "no delivery failed in the last 24 h"
  fi
  if api GET /api/v1/dashboard && [[ $HTTP_STATUS == 200 ]]; then
    report info "performance" "P50 $(body_jq .performance.p50_ms) ms, P95 $(body_jq .performance.p95_ms) ms, P99 $(body_jq .performance.p99_ms) ms, error rate $(body_jq .performance.error_rate), cache hit rate $(body_jq .performance.cache_hit_rate) (last 60 s)"
  else
    report warn "performance" "$(api_base)/api/v1/dashboard: ${HTTP_ERROR:-HTTP $HTTP_STATUS}"
  fi
  if api GET /health/deep; then
    report info "webhooks" "$(body_jq '.webhooks | "\(.active_count) active, \(.failing_count) failing, \(.disabled_count) disabled, \(.inactive_count) inactive"')"
  fi
}

maintenance_weekly() {
  section "weekly maintenance of $(app_target)"
  local out start
  start=$(now_ms)
  if out=$(app_sql <<<"VACUUM ANALYZE;" 2>&1); then
    local skipped note=""
    skipped=$(grep -c WARNING <<<"$out" || true)
    [[ $skipped -eq 0 ]] || note=" ($skipped relations skipped: only their owner or a superuser may vacuum them)"
    report ok "vacuum" "VACUUM ANALYZE in $(($(now_ms) - start)) ms$note"
  else
    report crit "vacuum" "$(grep -m1 ERROR <<<"$out")"
  fi
  if out=$(app_sql_file weekly-table-bloat.sql 2>&1); then
    data_set bloat "$(rows_json schemaname,tablename,table_size,dead_tuple_percent,free_percent,waste_ratio <<<"$out")"
    report info "bloat" "most wasted: $(head -n 3 <<<"$out" | awk -F"$US" '{ printf "%s%s.%s %s%% of %s", (NR > 1 ? ", " : ""), $1, $2, $6, $3 }')"
  else
    report warn "bloat" "$(head -n 1 <<<"$out")"
  fi
  start=$(now_ms)
  if out=$(app_sql <<<"REINDEX INDEX CONCURRENTLY idx_webhook_status;" 2>&1); then
    report ok "reindex" "REINDEX INDEX CONCURRENTLY idx_webhook_status in $(($(now_ms) - start)) ms"
  else
    report warn "reindex" "$(head -n 1 <<<"$out")"
  fi
  local file
  file=$(latest_backup)
  if [[ -z $file ]]; then
    report warn "restore-test" "no backup in $(backup_dir) to test"
  else
    say "-- test restore of $file"
    test_restore "$file"
  fi
  if out=$(app_sql <<'SQL' 2>&1
SELECT round(total_exec_time::numeric), calls, round(mean_exec_time::numeric, 2),
       left(regexp_replace(query, '\s+', ' ', 'g'), 120)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC
LIMIT 10;
SQL
  ); then
    data_set top_statements "$(rows_json total_ms,calls,mean_ms,query <<<"$out")"
    report info "performance" "statements that took the most time (pg_stat_statements):"
    # shellcheck disable=SC2016  # an awk program
    indented awk -F"$US" '{ printf "%10s ms %8s calls %10s ms mean  %s\n", $1, $2, $3, $4 }' <<<"$out"
  else
    report warn "performance" "pg_stat_statements: $(head -n 1 <<<"$out")"
  fi
  out=$(app_sql <<<"SELECT current_setting('log_min_duration_statement')" 2>/dev/null)
  checklist "Review slow query logs: log_min_duration_statement = ${out:-?} (the guide sets 1000 ms: ALTER SYSTEM SET log_min_duration_statement = 1000; SELECT pg_reload_conf();)"
  checklist "Review performance trends: the figures above, Grafana/Prometheus (docs/OBSERVABILITY.md)"
  checklist "Update dependencies: $(upgradable_count) Debian package(s) can be upgraded (apt list --upgradable)"
}

# verify-backup's steps, as one part of the weekly run.
test_restore() {
  local file=$1 out
  check_backup_files "$file" || return 0
  if ! out=$(pg_restore --list "$file" 2>&1); then
    report crit "archive" "pg_restore cannot read it: $(head -n 1 <<<"$out")"
    return 0
  fi
  SCRATCH_DB="pggit_verify_$(date +%s)_$$"
  trap drop_scratch EXIT
  provision_database "$SCRATCH_DB" && restore_into "$SCRATCH_DB" "$file" &&
    apply_settings "$SCRATCH_DB" "$MANIFEST" &&
    compare_with_manifest "$SCRATCH_DB" "$MANIFEST" &&
    run_guide_queries "$SCRATCH_DB" &&
    report ok "restore-test" "$(basename "$file") restores"
  drop_scratch
  trap - EXIT
}

upgradable_count() {
  if command -v apt-get >/dev/null 2>&1; then
    apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst' || true
  else
    echo "?"
  fi
}

maintenance_monthly() {
  section "monthly review of $(app_target)"
  local out
  out=$(query_rows size <<'SQL'
SELECT pg_size_pretty(pg_database_size(current_database())),
       (SELECT count(*) FROM alerts WHERE created_at > now() - interval '30 days'),
       (SELECT count(*) FROM alert_delivery_queue WHERE created_at > now() - interval '30 days'),
       (SELECT count(*) FROM alerts), (SELECT count(*) FROM alert_delivery_queue)
SQL
  ) || return 0
  local size alerts30 deliveries30 alerts deliveries
  IFS=$US read -r size alerts30 deliveries30 alerts deliveries <<<"$out"
  report info "capacity" "database $size; $alerts alerts ($alerts30 in 30 days, $((alerts30 / 30))/day), $deliveries deliveries kept ($deliveries30 in 30 days; WEBHOOK_RETENTION_DAYS=$(setting WEBHOOK_RETENTION_DAYS 14))"
  out=$(query_rows tables <<'SQL'
SELECT n.nspname || '.' || c.relname, pg_size_pretty(pg_total_relation_size(c.oid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'pggit'
ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 5;
SQL
  ) || return 0
  report info "tables" "largest: $(awk -F"$US" '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$out")"
  if out=$(app_sql_file weekly-table-bloat.sql 2>&1); then
    report info "bloat" "most wasted: $(head -n 3 <<<"$out" | awk -F"$US" '{ printf "%s%s.%s %s%% of %s", (NR > 1 ? ", " : ""), $1, $2, $6, $3 }')"
  fi
  if out=$(app_sql_file query-optimization-unused-indexes.sql 2>&1); then
    report info "indexes" "$(grep -c . <<<"$out") index(es) never scanned since the statistics were reset"
  fi
  report_disk / "$(backup_dir)"
  check_latest_backup || true
  checklist "Major security updates: $(upgradable_count) Debian package(s) can be upgraded (apt list --upgradable)"
  checklist "Database optimization (CLUSTER, etc.): see bloat and table sizes above; VACUUM FULL or CLUSTER lock the table while they run"
  checklist "Capacity planning review: growth above; DATABASE_POOL_SIZE=$(setting DATABASE_POOL_SIZE 20), CACHE_MAX_BYTES=$(setting CACHE_MAX_BYTES 104857600)"
  checklist "Documentation updates: docs/RUNBOOK.md"
  checklist "Disaster recovery drill: pggit-ops verify-backup, then pggit-ops restore FILE --into pggit on a spare host (docs/RUNBOOK.md)"
}
