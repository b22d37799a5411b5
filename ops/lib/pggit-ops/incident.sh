# shellcheck shell=bash
# pggit-ops incident: the guide's four incident procedures. Each prints its
# diagnosis, names the likely cause, and with --apply (after --yes or a
# prompt) carries out the guide's remedy.

cmd_incident_usage() {
  cat <<'EOF'
usage: pggit-ops incident KIND [--apply] [--yes] [options] [--json]

KIND:
  high-latency    request P99 and cache hit rate, the pool, what the
                  database is running (long statements, locks and who holds
                  them), slow statements (pg_stat_statements), unused
                  indexes. --apply: warms the cache and cancels statements of
                  this database running longer than --cancel-after S
                  (default 60; pggit-api's own stop at
                  DATABASE_STATEMENT_TIMEOUT).
                  --threshold-ms N: P99 above this is high (default 500).
  error-rate      the 5xx share (last 60 s, and since start by route), the
                  database, the error log, disk, memory, CRITICAL alerts,
                  the running version. --apply: the guide's restart, only
                  when its pre-flight passes (a restart cannot fix an
                  unreachable database), then watches the errors stop.
                  --threshold F: share above this is high (default 0.01).
  pool-exhausted  the pool (from /metrics: size, checked out, waiting,
                  timeouts), connections per database against
                  max_connections, the sessions of this database: idle in a
                  transaction, waiting on locks, long statements.
                  --apply: ends sessions of THIS database idle (or idle in a
                  transaction) for at least --idle-seconds S (default 300,
                  the guide's 5 minutes); other databases are never touched.
  queue-backlog   queue depth, pending deliveries per webhook with their
                  breaker and last error, the dispatcher. --apply: sends a
                  test event to each failing webhook with a backlog, disables
                  those whose test fails (is_active=false; their deliveries
                  wait, parked), then retry-pending and watches the backlog.
                  --threshold N: a backlog this large is critical (1000).
Common: --timeout S  how long --apply watches for recovery (default 60).
Exit: 0 no incident found (or fixed), 1 a problem that needs a look,
2 critical or the remedy failed, 3 could not diagnose.
EOF
}

cmd_incident() {
  [[ $# -ge 1 ]] || usage_error "incident needs a KIND: high-latency, error-rate, pool-exhausted or queue-backlog"
  local kind=$1
  shift
  APPLY=0 TIMEOUT=60 THRESHOLD="" CANCEL_AFTER=60 IDLE_SECONDS=300
  MIGRATE=0 NO_WARM=0  # of the restart that error-rate --apply makes
  while [[ $# -gt 0 ]]; do
    case $1 in
      --apply) APPLY=1 ;;
      --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || usage_error "--timeout needs seconds"
        TIMEOUT=$2; shift ;;
      --threshold | --threshold-ms)
        [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "$1 needs a number"
        THRESHOLD=$2; shift ;;
      --cancel-after) [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--cancel-after needs seconds"
        CANCEL_AFTER=$2; shift ;;
      --idle-seconds) [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--idle-seconds needs seconds"
        IDLE_SECONDS=$2; shift ;;
      *) usage_error "incident: unknown argument '$1'" ;;
    esac
    shift
  done
  COMMAND="incident $kind"
  case $kind in
    high-latency) incident_high_latency ;;
    error-rate) incident_error_rate ;;
    pool-exhausted) incident_pool_exhausted ;;
    queue-backlog) incident_queue_backlog ;;
    *) usage_error "unknown incident '$kind': high-latency, error-rate, pool-exhausted or queue-backlog" ;;
  esac
}

# Asks before a remedy; false (reported) when not confirmed.
confirm_remedy() {
  if confirm "$1"; then
    return 0
  fi
  report warn "apply" "not applied: $1 (pass --yes, or answer y at a terminal)"
  return 1
}

# remedy_sql NAME FILE VAR VALUE: ops/sql/FILE as the admin role (it may
# signal other roles' sessions) on the application's database, with the
# psql variable VAR; sets REMEDY_ROWS. False (reported) when it fails.
REMEDY_ROWS=""
remedy_sql() {
  if ! REMEDY_ROWS=$(admin_sql_file "$2" "$APP_DB" -v "$3=$4" 2>&1); then
    report crit "$1" "as $(admin_role): $(head -n 1 <<<"$REMEDY_ROWS")"
    return 1
  fi
}

# Pool figures from /metrics (no database needed): sets POOL_SIZE,
# POOL_AVAILABLE, POOL_CHECKED_OUT, POOL_WAITING, POOL_TIMEOUTS.
read_pool_metrics() {
  api GET /metrics && [[ $HTTP_STATUS == 200 ]] || return 1
  METRICS_TEXT=$HTTP_BODY
  POOL_SIZE=$(metric_value db_connection_pool_size "$METRICS_TEXT")
  POOL_AVAILABLE=$(metric_value db_connection_pool_available "$METRICS_TEXT")
  POOL_CHECKED_OUT=$(metric_value db_connection_pool_checked_out "$METRICS_TEXT")
  POOL_WAITING=$(metric_value db_connection_pool_waiting "$METRICS_TEXT")
  POOL_TIMEOUTS=$(metric_value db_connection_pool_timeouts_total "$METRICS_TEXT")
  [[ -n $POOL_AVAILABLE ]]
}

int() { printf '%.0f' "${1:-0}"; }

# Sessions of this database (ops/sql/incident-sessions.sql) into SESSIONS
# (tab-separated lines) and data.sessions.
SESSIONS=""
read_sessions() {
  local out
  if ! out=$(app_sql_file incident-sessions.sql 2>&1); then
    report unknown "sessions" "cannot read pg_stat_activity: $(head -n 1 <<<"$out")"
    return 1
  fi
  SESSIONS=$out
  data_set sessions "$(rows_json pid,usename,application_name,client,state,state_seconds,query_seconds,wait_event_type,blocked_by,strong_locks,query <<<"$SESSIONS")"
}

# Reports sessions holding strong locks, waiting on locks, or running long;
# names them as causes. Sets LOCK_WAITERS.
report_session_problems() {
  local long_after=$1
  local pid user app client state state_s query_s wait blocked locks query
  local waiters=0
  while IFS=$US read -r pid user app client state state_s query_s wait blocked locks query; do
    [[ -n $pid ]] || continue
    [[ $wait == Lock ]] && waiters=$((waiters + 1))
  done <<<"$SESSIONS"
  LOCK_WAITERS=$waiters
  if [[ $waiters -gt 0 ]]; then
    report warn "locks" "$waiters session(s) of $APP_DB wait on a lock"
  else
    report ok "locks" "no session of $APP_DB waits on a lock"
  fi
  while IFS=$US read -r pid user app client state state_s query_s wait blocked locks query; do
    [[ -n $pid ]] || continue
    local who="pid $pid ($user${app:+ via $app}, $client)"
    if [[ -n $locks ]]; then
      report warn "session" "$who, $state for ${state_s} s, holds $locks: $query"
      cause "$who holds $locks ($state for ${state_s} s: $query): every request that needs those tables waits for it"
    elif [[ $state == active && -n $query_s ]] && num_cmp "$query_s" ">=" "$long_after"; then
      report warn "session" "$who has run a statement for ${query_s} s: $query"
      cause "a statement running for ${query_s} s in $who: $query"
    elif [[ $state == idle\ in\ transaction* ]] && num_cmp "$state_s" ">=" 5; then
      report warn "session" "$who is $state for ${state_s} s (holds its connection and its locks): $query"
      cause "$who is $state for ${state_s} s: a transaction left open holds a connection and its locks"
    fi
  done <<<"$SESSIONS"
}

incident_high_latency() {
  local threshold=${THRESHOLD:-500} hit p99 total
  section "incident: high latency (P99 threshold ${threshold} ms)"
  check_liveness || return 0
  if api GET /api/v1/cache/stats && [[ $HTTP_STATUS == 200 ]]; then
    IFS=$US read -r hit p99 total < <(body_jq '[.hit_rate,
      (.cache_stats.p99_ms * 10 | round / 10), .total_requests] | usv')
    data_set cache "$HTTP_BODY"
    if num_cmp "$p99" ">" "$threshold"; then
      report warn "latency" "request P99 is $p99 ms over the last 60 s (threshold $threshold ms)"
    else
      report ok "latency" "request P99 is $p99 ms over the last 60 s (threshold $threshold ms)"
    fi
    if [[ $(int "$total") -ge 20 ]] && num_cmp "$hit" "<" 0.7; then
      report warn "cache" "hit rate $hit of $total lookups (below 0.7)"
      cause "a cold cache: hit rate $hit (warming it is the guide's first remedy)"
    else
      report ok "cache" "hit rate $hit of $total lookups"
    fi
  else
    report warn "cache" "/api/v1/cache/stats: ${HTTP_ERROR:-HTTP $HTTP_STATUS}"
  fi
  if read_pool_metrics; then
    if [[ $(int "$POOL_WAITING") -gt 0 ]]; then
      report warn "pool" "$(int "$POOL_WAITING") request(s) wait for a database connection ($(int "$POOL_AVAILABLE") available)"
      cause "requests wait for database connections: see pggit-ops incident pool-exhausted"
    else
      report ok "pool" "$(int "$POOL_AVAILABLE") connection(s) available, none waited for"
    fi
  fi
  load_connections || return 0
  local out
  if out=$(app_sql <<<"SELECT count(*), count(*) FILTER (WHERE datname = current_database()), count(*) FILTER (WHERE datname = current_database() AND state = 'active') FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>&1); then
    IFS=$US read -r all here active <<<"$out"
    report info "connections" "$all connection(s) to the server, $here to $APP_DB ($active active)"
  else
    report crit "database" "cannot query as $(app_target): $(head -n 1 <<<"$out")"
    cause "the database does not answer: see pggit-ops incident error-rate"
    return 0
  fi
  read_sessions && report_session_problems "$CANCEL_AFTER"
  if out=$(app_sql_file incident-slow-statements.sql 2>&1); then
    local mean max calls query n=0
    while IFS=$US read -r mean max calls query; do
      [[ -n $mean ]] || continue
      n=$((n + 1))
      report warn "slow" "mean $mean ms (max $max ms, $calls calls): $query"
      [[ $n -gt 1 ]] || cause "slow statements in pg_stat_statements, the slowest at a mean of $mean ms: $query"
    done <<<"$out"
    [[ $n -gt 0 ]] || report ok "slow" "no statement of $APP_DB averages over 1 s (pg_stat_statements)"
  else
    report unknown "slow" "pg_stat_statements: $(head -n 1 <<<"$out")"
  fi
  if out=$(app_sql_file high-latency-unused-indexes.sql 2>&1); then
    report info "indexes" "$(grep -c . <<<"$out") index(es) never scanned since the statistics were reset (ops/sql/high-latency-unused-indexes.sql); an unused index costs writes, a missing one reads"
  fi
  if [[ ${#CAUSES[@]} -eq 0 && $WORST -ge 1 ]]; then
    cause "nothing in the cache or the database explains it: look at the host (top, free -h), recent deploys, and pggit-ops incident error-rate"
  fi
  [[ $APPLY -eq 1 ]] || return 0
  confirm_remedy "warm the cache and cancel statements of $APP_DB running over ${CANCEL_AFTER} s" || return 0
  warm_cache
  local pid user app secs q ok
  remedy_sql cancel high-latency-cancel-slow.sql slow_seconds "$CANCEL_AFTER" ||
    return 0
  while IFS=$US read -r pid user app secs q ok; do
    [[ -n $pid ]] || continue
    if [[ $ok == t ]]; then
      action "cancelled the statement of pid $pid ($user${app:+ via $app}, ${secs} s): $q"
    else
      report warn "cancel" "could not cancel pid $pid"
    fi
  done <<<"$REMEDY_ROWS"
  [[ -n $REMEDY_ROWS ]] || report info "cancel" "no statement of $APP_DB ran over ${CANCEL_AFTER} s"
}

incident_pool_exhausted() {
  section "incident: database connection pool exhausted"
  check_liveness || return 0
  if read_pool_metrics; then
    local avail waiting
    avail=$(int "$POOL_AVAILABLE")
    waiting=$(int "$POOL_WAITING")
    local text
    text="$(int "$POOL_CHECKED_OUT") checked out of $(int "$POOL_SIZE") (+ overflow), $avail available, $waiting waiting; $(int "$POOL_TIMEOUTS") checkout time-outs since start"
    data_set pool "$(jq -cn --arg s "$POOL_SIZE" --arg a "$POOL_AVAILABLE" \
      --arg c "$POOL_CHECKED_OUT" --arg w "$POOL_WAITING" --arg t "$POOL_TIMEOUTS" \
      '{size: ($s|tonumber), available: ($a|tonumber), checked_out: ($c|tonumber), waiting: ($w|tonumber), timeouts_total: ($t|tonumber)}')"
    if [[ $avail -lt 2 || $waiting -gt 0 ]]; then
      report crit "pool" "exhausted: $text"
    else
      report ok "pool" "$text"
    fi
  else
    report unknown "pool" "/metrics: ${HTTP_ERROR:-HTTP $HTTP_STATUS}"
  fi
  load_connections || return 0
  local out datname conns max total=0 maxconn=0
  if ! out=$(app_sql_file pool-exhausted-connection-usage.sql 2>&1); then
    report crit "database" "cannot query as $(app_target): $(head -n 1 <<<"$out")"
    cause "the database does not answer (or refuses new connections): $(head -n 1 <<<"$out")"
    return 0
  fi
  while IFS=$US read -r datname conns max; do
    [[ -n $conns ]] || continue
    total=$((total + conns))
    maxconn=$max
    report info "connections" "${datname:-(no database)}: $conns"
  done <<<"$out"
  if [[ $maxconn -gt 0 && $total -ge $((maxconn * 9 / 10)) ]]; then
    report crit "server" "$total connections of max_connections $maxconn"
    cause "the server is at max_connections ($total of $maxconn): other clients take the connections the pool needs"
  else
    report ok "server" "$total connections of max_connections $maxconn"
  fi
  read_sessions && report_session_problems 30
  report info "settings" "DATABASE_POOL_SIZE=$(setting DATABASE_POOL_SIZE 20), DATABASE_POOL_MAX_OVERFLOW=$(setting DATABASE_POOL_MAX_OVERFLOW 10) (raise them in ${ENV_FILE:-.env}, then pggit-ops restart, if the load itself needs more)"
  [[ $APPLY -eq 1 ]] || return 0
  confirm_remedy "end the sessions of database $APP_DB idle for at least ${IDLE_SECONDS} s" || return 0
  local pid user app state idle ok n=0
  remedy_sql terminate pool-exhausted-kill-idle.sql idle_seconds \
    "$IDLE_SECONDS" || return 0
  while IFS=$US read -r pid user app state idle ok; do
    [[ -n $pid ]] || continue
    [[ $ok == t ]] && n=$((n + 1))
    action "ended pid $pid ($user${app:+ via $app}, $state for $idle s)"
  done <<<"$REMEDY_ROWS"
  [[ $n -gt 0 ]] || report info "terminate" "no session of $APP_DB was idle for ${IDLE_SECONDS} s"
  watch_pool_recovery
}

# After the remedy: waits until no request waits for a connection.
watch_pool_recovery() {
  local start
  start=$(now_ms)
  while (($(now_ms) - start < TIMEOUT * 1000)); do
    if read_pool_metrics && [[ $(int "$POOL_WAITING") -eq 0 && $(int "$POOL_AVAILABLE") -ge 1 ]]; then
      report ok "recovery" "the pool recovered: $(int "$POOL_AVAILABLE") available, none waiting"
      # The finding above no longer holds.
      WORST=$(( WORST >= 3 ? 1 : WORST ))
      return 0
    fi
    pause 0.5
  done
  report crit "recovery" "after ${TIMEOUT} s: $(int "$POOL_WAITING") still waiting, $(int "$POOL_AVAILABLE") available"
}

# http_requests_total 5xx by route and status, since the daemon started.
report_5xx_by_route() {
  local lines total errors
  lines=$(awk '/^http_requests_total[{]/ {
      m = $1; route = m; status = m
      sub(/.*route="/, "", route); sub(/".*/, "", route)
      sub(/.*status="/, "", status); sub(/".*/, "", status)
      print route "\t" status "\t" $2 }' <<<"$METRICS_TEXT")
  total=$(awk -F'\t' '{ s += $3 } END { printf "%d", s }' <<<"$lines")
  errors=$(awk -F'\t' '$2 ~ /^5/ { s += $3 } END { printf "%d", s }' <<<"$lines")
  report info "5xx" "$errors of $total requests since the daemon started answered 5xx"
  local route status count
  while IFS=$'\t' read -r route status count; do
    [[ -n $route ]] || continue
    report info "5xx" "$(int "$count") x $status on $route"
  done < <(awk -F'\t' '$2 ~ /^5/' <<<"$lines" | sort -t$'\t' -k3 -rn | head -n 5)
}

incident_error_rate() {
  local threshold=${THRESHOLD:-0.01} rate rps
  section "incident: high error rate (threshold $threshold)"
  if ! check_liveness; then
    report_journal
    return 0
  fi
  if api GET /api/v1/dashboard && [[ $HTTP_STATUS == 200 ]]; then
    IFS=$US read -r rate rps < <(body_jq '[.performance.error_rate,
      (.performance.requests_per_second * 100 | round / 100)] | usv')
    data_set performance "$(body_jq -c '.performance')"
    local pct
    pct=$(awk -v r="$rate" 'BEGIN { printf "%.1f", r * 100 }')
    if num_cmp "$rate" ">" "$threshold"; then
      report crit "errors" "$pct% of requests answered 5xx over the last 60 s ($rps requests/s; threshold $threshold)"
    else
      report ok "errors" "$pct% of requests answered 5xx over the last 60 s ($rps requests/s)"
    fi
  else
    report warn "errors" "/api/v1/dashboard: ${HTTP_ERROR:-HTTP $HTTP_STATUS} (the 60-s error rate is not available)"
  fi
  read_pool_metrics && report_5xx_by_route
  load_connections || return 0
  check_deep_health || true
  local deep_db=${DEEP_DB_STATUS:-}
  if ! check_database; then
    cause "PostgreSQL is unreachable as $(app_target): requests that need the database answer 503 (start it, or see journalctl -u postgresql)"
  elif [[ -n $deep_db && $deep_db != connected ]]; then
    cause "the daemon's own connections fail ($deep_db) although psql connects: see pggit-ops incident pool-exhausted"
  fi
  if [[ $(int "${POOL_TIMEOUTS:-0}") -gt 0 ]]; then
    report warn "pool" "$(int "$POOL_TIMEOUTS") checkout time-outs since start (503 POOL_TIMEOUT)"
    cause "requests time out waiting for a database connection (503 POOL_TIMEOUT): see pggit-ops incident pool-exhausted"
  fi
  report_error_log
  report_disk / "$(setting PGGIT_LOG_FILE /var/log/pggit/error.log)"
  report_memory
  if api GET "/api/v1/alerts?severity=CRITICAL&status=pending&limit=5" && [[ $HTTP_STATUS == 200 ]]; then
    report info "alerts" "$(body_jq '.total') pending CRITICAL alert(s) (GET /api/v1/alerts?severity=CRITICAL&status=pending)"
  fi
  [[ $APPLY -eq 1 ]] || return 0
  say "-- remedy: restart $(service_unit) (pre-flight first)"
  if ! preflight; then
    report crit "apply" "not restarting: the pre-flight failed, so a restarted daemon would not be ready either"
    return 0
  fi
  confirm_remedy "restart $(service_unit)" || return 0
  restart_service || return 0
  watch_error_recovery
}

# After a restart: a few reads must not answer 5xx.
watch_error_recovery() {
  local i bad=0 n=10 path
  for ((i = 0; i < n; i++)); do
    path='/api/v1/alerts?limit=1'
    ((i % 2 == 0)) || path='/api/v1/webhooks?limit=1'
    if ! api GET "$path" || [[ $HTTP_STATUS == 5* ]]; then
      bad=$((bad + 1))
    fi
  done
  if [[ $bad -eq 0 ]]; then
    report ok "recovery" "$n requests after the restart: none answered 5xx"
    WORST=$(( WORST >= 3 ? 1 : WORST ))
  else
    report crit "recovery" "$bad of $n requests after the restart answered 5xx or not at all"
  fi
}

# The last lines of PGGIT_LOG_FILE (the guide's `tail -100
# /var/log/pggit/error.log | tail -20`), else of the journal.
report_error_log() {
  local file lines
  file=$(setting PGGIT_LOG_FILE)
  if [[ -n $file && -r $file ]]; then
    lines=$(tail -n 20 "$file")
    report info "log" "$(grep -c . <<<"$lines") last line(s) of $file"
  else
    lines=$(journal_tail 20)
    report info "log" "last lines of journalctl -u $(service_unit)${file:+ ($file is not readable)}"
  fi
  [[ -z $lines ]] || indented printf '%s\n' "$lines"
  data_set log "$(jq -Rsc 'split("\n") | map(select(. != ""))' <<<"$lines")"
}

# report_disk PATH...: the file systems holding each PATH (the guide's df).
report_disk() {
  local path dir use mount seen=" "
  for path in "$@"; do
    dir=$path
    while [[ ! -e $dir && $dir != / ]]; do dir=$(dirname "$dir"); done
    read -r use mount < <(df -P "$dir" 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); print $5, $6 }')
    [[ -n $use && $seen != *" $mount "* ]] || continue
    seen+="$mount "
    if [[ $use -ge 95 ]]; then
      report crit "disk" "$mount is $use% full (holds $path)"
      cause "the file system $mount is $use% full"
    elif [[ $use -ge 85 ]]; then
      report warn "disk" "$mount is $use% full (holds $path)"
    else
      report ok "disk" "$mount is $use% full (holds $path)"
    fi
  done
}

report_memory() {
  local total avail
  total=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)
  avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo 2>/dev/null)
  [[ -n $total && -n $avail ]] || return 0
  if [[ $((avail * 100 / total)) -lt 5 ]]; then
    report warn "memory" "$((avail / 1024)) MiB of $((total / 1024)) MiB available"
    cause "the host is out of memory ($((avail / 1024)) MiB available)"
  else
    report ok "memory" "$((avail / 1024)) MiB of $((total / 1024)) MiB available"
  fi
}

# Queue figures: BACKLOG (pending rows of active webhooks), DUE, PARKED,
# IN_PROGRESS, OLDEST (seconds).
read_queue() {
  local out
  out=$(app_sql 2>&1 <<'SQL'
SELECT count(*) FILTER (WHERE q.delivery_status = 'pending' AND w.status = 'active'),
       count(*) FILTER (WHERE q.delivery_status = 'pending' AND w.status = 'active'
                          AND q.next_attempt_at <= now()),
       count(*) FILTER (WHERE q.delivery_status = 'pending' AND w.status <> 'active'),
       count(*) FILTER (WHERE q.delivery_status = 'in_progress'),
       coalesce(round(extract(epoch FROM now() - min(q.created_at)
         FILTER (WHERE q.delivery_status = 'pending' AND w.status = 'active')))::int, 0)
FROM alert_delivery_queue q JOIN webhooks w ON w.id = q.webhook_id
WHERE q.delivery_status IN ('pending', 'in_progress')
SQL
  ) || {
    report crit "queue" "cannot read the queue as $(app_target): $(head -n 1 <<<"$out")"
    return 1
  }
  IFS=$US read -r BACKLOG DUE PARKED IN_PROGRESS OLDEST <<<"$out"
}

incident_queue_backlog() {
  local threshold=${THRESHOLD:-1000}
  section "incident: webhook queue backlog (threshold $threshold)"
  load_connections || return 0
  read_queue || return 0
  data_set queue "$(jq -cn --argjson b "$BACKLOG" --argjson d "$DUE" --argjson p "$PARKED" \
    --argjson i "$IN_PROGRESS" --argjson o "$OLDEST" \
    '{backlog: $b, due_now: $d, parked: $p, in_progress: $i, oldest_pending_seconds: $o}')"
  local text="$BACKLOG pending for active webhooks ($DUE due now, oldest ${OLDEST} s), $IN_PROGRESS in progress, $PARKED parked for inactive or disabled webhooks"
  if [[ $BACKLOG -ge $(int "$threshold") ]]; then
    report crit "queue" "backlog: $text"
  elif [[ $DUE -gt 0 && $OLDEST -gt 300 ]]; then
    report warn "queue" "deliveries are due but not taken: $text"
  else
    report ok "queue" "$text"
  fi
  report_dispatcher
  report_backlog_webhooks || return 0
  [[ $APPLY -eq 1 ]] || return 0
  apply_queue_remedy
}

report_dispatcher() {
  if ! api GET /health/deep; then
    report crit "dispatcher" "$(api_base): no answer ($HTTP_ERROR)"
    cause "pggit-api is down: nothing delivers (pggit-ops status)"
    return
  fi
  local status
  status=$(body_jq '.dispatcher.status // empty')
  if [[ $status == running ]]; then
    report ok "dispatcher" "running ($(body_jq '.dispatcher.in_flight') in flight)"
  else
    report crit "dispatcher" "${status:-unknown} on this instance"
    cause "the dispatcher is ${status:-not reporting}: deliveries are not being taken (pggit-ops restart)"
  fi
}

# Per webhook (ops/sql/queue-backlog-by-webhook.sql); FAILING gets the ids
# of active webhooks with a backlog that are failing.
FAILING=()
report_backlog_webhooks() {
  local out id name status breaker fails pending due oldest next http err
  if ! out=$(app_sql_file queue-backlog-by-webhook.sql 2>&1); then
    report crit "webhooks" "$(head -n 1 <<<"$out")"
    return 1
  fi
  data_set webhooks "$(rows_json webhook_id,name,status,breaker_state,consecutive_failures,pending_count,due_now,oldest_seconds,next_attempt_in_seconds,last_http_status,last_error <<<"$out")"
  FAILING=()
  while IFS=$US read -r id name status breaker fails pending due oldest next http err; do
    [[ -n $id ]] || continue
    local what="webhook '$name' (id $id, $status, breaker $breaker): $pending pending, $due due now, oldest ${oldest} s${http:+, last HTTP $http}${err:+: $err}"
    if [[ $status != active ]]; then
      report info "webhook" "$what (parked until it is active again)"
    elif [[ $fails -gt 0 || $breaker != closed ]]; then
      report warn "webhook" "$what"
      FAILING+=("$id")
      cause "webhook '$name' (id $id) is failing ($fails consecutive failures, breaker $breaker${http:+, last HTTP $http}): $pending deliveries pile up behind it${next:+; next attempt in $next s}"
    else
      report info "webhook" "$what"
    fi
  done <<<"$out"
}

apply_queue_remedy() {
  confirm_remedy "test each failing webhook with a backlog, disable those whose test fails, and retry pending deliveries" || return 0
  local id
  for id in "${FAILING[@]}"; do
    if api POST "/api/v1/webhooks/$id/test" && [[ $HTTP_STATUS == 200 ]] &&
      [[ $(body_jq '.success') == true ]]; then
      report ok "test" "webhook $id answered the test event (HTTP $(body_jq '.http_status')): kept active"
      continue
    fi
    local why
    why=$(body_jq '"HTTP " + (.http_status // 0 | tostring) + " " + (.error // "")')
    if api PATCH "/api/v1/webhooks/$id" '{"is_active": false}' && [[ $HTTP_STATUS == 200 ]]; then
      action "disabled webhook $id (is_active=false): its test event failed (${why:-no answer}); set is_active=true once its receiver works"
    else
      report crit "disable" "could not disable webhook $id: ${HTTP_ERROR:-HTTP $HTTP_STATUS $(body_jq '.detail // empty')}"
    fi
  done
  if api POST /api/v1/webhooks/retry-pending && [[ $HTTP_STATUS == 200 ]]; then
    action "retry-pending: $(body_jq '.retried') deliveries made due now"
  else
    report crit "retry" "POST /api/v1/webhooks/retry-pending: ${HTTP_ERROR:-HTTP $HTTP_STATUS}"
    return 0
  fi
  watch_backlog_recovery
}

# The guide's "Monitor recovery": the backlog of active webhooks drains.
watch_backlog_recovery() {
  local start
  start=$(now_ms)
  while (($(now_ms) - start < TIMEOUT * 1000)); do
    read_queue || return 0
    # A row taken by a dispatcher is no longer pending but not delivered
    # yet: recovery is when neither remains.
    if [[ $BACKLOG -eq 0 && $IN_PROGRESS -eq 0 ]]; then
      report ok "recovery" "no delivery of an active webhook is pending or in progress; $PARKED parked for inactive or disabled webhooks"
      WORST=$(( WORST >= 3 ? 1 : WORST ))
      return 0
    fi
    pause 0.5
  done
  report crit "recovery" "after ${TIMEOUT} s $BACKLOG deliveries of active webhooks are still pending ($DUE due now), $IN_PROGRESS in progress"
}
