# shellcheck shell=bash
# pggit-ops health, warm-cache, invalidate: the guide's daily health check
# and its cache runbook.

cmd_health_usage() {
  cat <<'EOF'
usage: pggit-ops health [--json]

The guide's daily health check (a timer runs it every 4 hours):
  /health            the daemon answers (version, uptime)
  /health/deep       every check: database, schema, cache, Redis, webhooks,
                     queue, dispatcher, listener, lock waits
  cache stats        hit rate and P99 latency (/api/v1/cache/stats)
  database           a query as the application role (DATABASE_URL)
  Redis              PING when REDIS_URL is set; without it the L2 cache is
                     off and there is nothing to check (not a failure)
Exit: 0 healthy, 1 degraded (e.g. Redis down, a webhook failing, low hit
rate), 2 down (the daemon or the database), 3 could not check.
EOF
}

# Checks /health; true when the daemon answered.
check_liveness() {
  if ! api GET /health; then
    report crit "api" "$(api_base)/health: no answer ($HTTP_ERROR)"
    cause "pggit-api is not running or not listening on $(api_base) (pggit-ops status; journalctl -u pggit-api)"
    return 1
  fi
  if [[ $HTTP_STATUS != 200 ]]; then
    report crit "api" "$(api_base)/health answered HTTP $HTTP_STATUS"
    return 1
  fi
  local status version uptime
  IFS=$US read -r status version uptime < <(body_jq '[.status, .version,
    (.uptime_seconds | floor)] | usv')
  report ok "api" "$(api_base)/health: $status (version $version, up $uptime s)" \
    "$HTTP_BODY"
}

# One line per /health/deep check.
deep_check_lines() {
  local name status ok message
  while IFS=$US read -r name status ok message; do
    local level=ok
    [[ $ok == true ]] || level=warn
    [[ $name != database && $name != schema ]] || [[ $ok == true ]] || level=crit
    if [[ $name == redis && $status == disabled ]]; then
      level=info
      message="not configured (REDIS_URL unset): no L2 cache"
    fi
    report "$level" "deep.$name" "$status${message:+ ($message)}"
  done < <(body_jq 'to_entries[]
      | select(.value | type == "object" and has("status"))
      | [.key, .value.status, (.value | has("error") | not | tostring),
         (.value.error // "")] | usv')
}

check_deep_health() {
  if ! api GET /health/deep; then
    report crit "deep" "/health/deep: no answer ($HTTP_ERROR)"
    return 1
  fi
  local overall failing waits max
  IFS=$US read -r overall failing DEEP_DB_STATUS waits max < <(body_jq '[.status,
    (.failing // [] | join(", ")), (.database.status // ""),
    (.database.locks.waiting // ""),
    (.database.locks.longest_wait_seconds // "")] | usv')
  case $HTTP_STATUS:$overall in
    200:healthy) report ok "deep" "/health/deep: healthy" ;;
    200:*) report warn "deep" "/health/deep: $overall (failing: $failing)" ;;
    *) report crit "deep" "/health/deep: HTTP $HTTP_STATUS, $overall (failing: $failing)" ;;
  esac
  jq -e . >/dev/null 2>&1 <<<"$HTTP_BODY" && data_set deep "$HTTP_BODY"
  deep_check_lines
  if [[ -n $waits ]]; then
    if [[ $waits -gt 0 ]]; then
      report warn "locks" "$waits session(s) of the database wait on a lock (longest ${max} s)"
    else
      report ok "locks" "no session waits on a lock"
    fi
  fi
}

# Cache figures (the guide's `jq '.hit_rate'` and `.cache_stats.p99_ms`).
check_cache_stats() {
  if ! api GET /api/v1/cache/stats || [[ $HTTP_STATUS != 200 ]]; then
    report warn "cache" "/api/v1/cache/stats: ${HTTP_ERROR:-HTTP $HTTP_STATUS}"
    return 1
  fi
  local hit p99 total low
  IFS=$US read -r hit p99 total low < <(body_jq '[(.hit_rate * 100 | floor),
    (.cache_stats.p99_ms * 10 | round / 10), .total_requests,
    (.total_requests >= 100 and .hit_rate < 0.7)] | usv')
  data_set cache "$HTTP_BODY"
  local level=ok
  [[ $low != true ]] || level=warn
  report "$level" "cache" "hit rate $hit% of $total lookups; request P99 $p99 ms (last 60 s)"
}

# The guide's `psql ... -c "SELECT 'DB connected' as status;"`, as the
# application role.
check_database() {
  local out
  if out=$(app_sql -c "SELECT 'DB connected' AS status" 2>&1); then
    report ok "database" "$out as $(app_target)"
    return 0
  fi
  report crit "database" "cannot connect as $(app_target): $(head -n 1 <<<"$out")"
  return 1
}

# REDIS_URL -> redis-cli arguments (the password goes in REDISCLI_AUTH),
# read as the daemon reads it (libpggitops/config/redis_url.h):
#   redis://[[user]:password@]host[:port][/db], redis://password@host...
#   unix://[[user]:password@]/path[?db=N][&password=P]
REDIS_ARGS=()
REDIS_AUTH=""
parse_redis_url() {
  local url=$1 rest userinfo="" hostport db="" query="" param
  REDIS_ARGS=()
  REDIS_AUTH=""
  case $url in
    unix://*)
      rest=${url#unix://}
      if [[ $rest != /* && $rest == *@/* ]]; then
        userinfo=${rest%%@/*}
        rest=/${rest#*@/}
      fi
      [[ $rest != *\?* ]] || query=${rest#*\?}
      REDIS_ARGS=(-s "${rest%%\?*}")
      local -a params=()
      [[ -z $query ]] || IFS='&' read -ra params <<<"$query"
      for param in "${params[@]}"; do
        case $param in
          db=*) db=${param#db=} ;;
          password=*) REDIS_AUTH=$(pct_decode "${param#password=}") ;;
        esac
      done
      ;;
    redis://*)
      rest=${url#redis://}
      if [[ $rest == *@* ]]; then
        userinfo=${rest%@*}
        rest=${rest##*@}
      fi
      hostport=${rest%%/*}
      [[ $rest != */* ]] || db=${rest#*/}
      split_host_port "$hostport"
      REDIS_ARGS=(-h "${HP_HOST:-127.0.0.1}" -p "${HP_PORT:-6379}")
      ;;
    *) return 1 ;;
  esac
  [[ -z $db ]] || REDIS_ARGS+=(-n "$db")
  if [[ -n $userinfo ]]; then
    if [[ $userinfo == *:* ]]; then
      local user=${userinfo%%:*}
      [[ -z $user ]] || REDIS_ARGS+=(--user "$(pct_decode "$user")")
      REDIS_AUTH=$(pct_decode "${userinfo#*:}")
    else
      REDIS_AUTH=$(pct_decode "$userinfo")  # a lone credential: the password
    fi
  fi
}

# redis-cli ping; the password travels in REDISCLI_AUTH, not in arguments.
redis_ping() {
  if [[ -n $REDIS_AUTH ]]; then
    REDISCLI_AUTH=$REDIS_AUTH timeout 5 redis-cli --no-auth-warning \
      "${REDIS_ARGS[@]}" ping
  else
    env -u REDISCLI_AUTH timeout 5 redis-cli "${REDIS_ARGS[@]}" ping
  fi
}

# The guide's `redis-cli ping`, only when REDIS_URL is set.
check_redis() {
  local url out
  url=$(setting REDIS_URL)
  if [[ -z $url ]]; then
    report info "redis" "not configured (REDIS_URL unset): the cache is in-process only; nothing to check"
    return 0
  fi
  if ! parse_redis_url "$url"; then
    report warn "redis" "REDIS_URL is not a redis:// or unix:// URL"
    return 1
  fi
  if ! command -v redis-cli >/dev/null 2>&1; then
    report unknown "redis" "redis-cli not found (Debian package redis-tools); see deep.redis above"
    return 1
  fi
  if out=$(redis_ping 2>&1) && [[ $out == PONG ]]; then
    report ok "redis" "PING answered PONG"
    return 0
  fi
  report warn "redis" "PING failed: $(head -n 1 <<<"$out"): the daemon works without its L2 cache (degraded)"
  return 1
}

cmd_health() {
  [[ $# -eq 0 ]] || usage_error "health takes no arguments"
  section "health of pggit-api at $(api_base)"
  load_connections || true
  check_liveness && {
    check_deep_health
    check_cache_stats
  }
  [[ ${#APP_CONN[@]} -eq 0 ]] || check_database
  check_redis
}

cmd_warm_cache_usage() {
  cat <<'EOF'
usage: pggit-ops warm-cache [--json]

The guide's cache warming runbook: checks that the API answers, prints the
hit rate, loads the warm sets (POST /api/v1/cache/warm: the first page of
webhooks and of alerts, the dashboard summary) and prints the figures after.
Exit: 0 warmed, 2 the API is down or warming failed.
EOF
}

cmd_warm_cache() {
  [[ $# -eq 0 ]] || usage_error "warm-cache takes no arguments"
  section "cache warming at $(api_base)"
  check_liveness || return 0
  warm_cache
}

# POST /api/v1/cache/warm with the hit rate before and after.
warm_cache() {
  local before after
  api GET /api/v1/cache/stats && before=$(body_jq '.hit_rate // empty')
  if ! api POST /api/v1/cache/warm || [[ $HTTP_STATUS != 200 ]]; then
    report crit "warm" "POST /api/v1/cache/warm: ${HTTP_ERROR:-HTTP $HTTP_STATUS $(body_jq '.detail // empty')}"
    return 1
  fi
  local entries ms
  IFS=$US read -r entries ms < <(body_jq '[.warmed_entries,
    (.duration_ms | round)] | usv')
  data_set warm "$(body_jq -c '.')"
  api GET /api/v1/cache/stats && after=$(body_jq '.hit_rate // empty')
  report ok "warm" "loaded $entries entries in $ms ms (hit rate ${before:-?} before, ${after:-?} after)"
  action "warmed the cache ($entries entries)"
}

cmd_invalidate_usage() {
  cat <<'EOF'
usage: pggit-ops invalidate PATTERN [--json]

Drops the cache entries whose keys match PATTERN, on this instance and
(through Redis or PostgreSQL notifications) every other one:
POST /api/v1/cache/invalidate {"pattern": PATTERN}. Key families:
webhooks:*, alerts:*, dashboard:*; * drops everything.
Exit: 0 done, 2 the API refused or is down.
EOF
}

cmd_invalidate() {
  [[ $# -eq 1 ]] || usage_error "invalidate takes one PATTERN (e.g. 'webhooks:*')"
  local pattern=$1
  section "cache invalidation of '$pattern' at $(api_base)"
  if ! api POST /api/v1/cache/invalidate "$(jq -cn --arg p "$pattern" '{pattern: $p}')"; then
    report crit "invalidate" "no answer from $(api_base): $HTTP_ERROR"
    return 0
  fi
  if [[ $HTTP_STATUS != 200 ]]; then
    report crit "invalidate" "HTTP $HTTP_STATUS: $(body_jq '.detail // empty')"
    return 0
  fi
  data_set invalidate "$(body_jq -c '.')"
  report ok "invalidate" "dropped $(body_jq '.invalidated') entries; $(body_jq '.total_entries') left"
  action "invalidated '$pattern'"
}
