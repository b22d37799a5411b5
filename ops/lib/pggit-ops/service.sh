# shellcheck shell=bash
# pggit-ops start, stop, restart, status: the guide's startup and shutdown
# procedures for pggit-api under systemd.
#
# Seams (tests; another init system): PGGIT_OPS_SYSTEMCTL and
# PGGIT_OPS_JOURNALCTL name the programs used instead of systemctl and
# journalctl; PGGIT_OPS_SERVICE the unit (default pggit-api.service);
# PGGIT_API_BIN the daemon binary (default: pggit-api next to pggit-ops as
# installed, else in PATH).

service_unit() { printf '%s' "${PGGIT_OPS_SERVICE:-pggit-api.service}"; }
svc() { "${PGGIT_OPS_SYSTEMCTL:-systemctl}" "$@"; }

# unit_prop NAME: one property of the unit ("" when systemctl fails).
unit_prop() {
  svc show "$(service_unit)" --property="$1" --value 2>/dev/null || true
}

# The last N lines of the daemon's log (journal).
journal_tail() {
  "${PGGIT_OPS_JOURNALCTL:-journalctl}" -u "$(service_unit)" -n "$1" \
    --no-pager -o cat 2>/dev/null || true
}

api_bin() {
  if [[ -n ${PGGIT_API_BIN:-} ]]; then
    printf '%s' "$PGGIT_API_BIN"
  elif [[ $PGGIT_OPS_BINDIR != @* && -x $PGGIT_OPS_BINDIR/pggit-api ]]; then
    printf '%s' "$PGGIT_OPS_BINDIR/pggit-api"
  else
    command -v pggit-api || printf 'pggit-api'
  fi
}

# pggit-api in the daemon's folder, so it reads the same .env.
run_api() {
  local bin
  bin=$(api_bin)
  (cd "$(daemon_dir)" && exec "$bin" "$@")
}

check_config_valid() {
  local out
  if ! out=$(run_api check-config 2>&1 >/dev/null); then
    report crit "config" "pggit-api check-config refuses the configuration: $(tail -n 1 <<<"$out")"
    return 1
  fi
  report ok "config" "pggit-api check-config: valid (.env: ${ENV_FILE:-none})"
}

# The schema version against what this pggit-api needs; with MIGRATE=1 a
# schema that is behind is migrated first.
check_migrations() {
  local line need max have out
  line=$(run_api version 2>/dev/null)
  if [[ ! $line =~ schema\ ([0-9]+),\ compatible\ up\ to\ ([0-9]+) ]]; then
    report unknown "migrations" "cannot read the schema version pggit-api needs ('$(api_bin) version': $line)"
    return 1
  fi
  need=${BASH_REMATCH[1]}
  max=${BASH_REMATCH[2]}
  if ! have=$(app_sql <<<"$SCHEMA_VERSION_SQL" 2>&1); then
    report crit "migrations" "cannot read the schema version: $(head -n 1 <<<"$have")"
    return 1
  fi
  if [[ $have -lt $need && ${MIGRATE:-0} -eq 1 ]]; then
    if ! out=$(run_api migrate 2>&1); then
      report crit "migrations" "pggit-api migrate failed: $(tail -n 1 <<<"$out")"
      return 1
    fi
    action "pggit-api migrate: $out"
    have=$need
  fi
  if [[ $have -lt $need ]]; then
    report crit "migrations" "the schema is at version $have, pggit-api needs $need: run 'pggit-api migrate' (or pggit-ops start --migrate)"
    return 1
  fi
  if [[ $have -gt $max ]]; then
    report crit "migrations" "the schema is at version $have, newer than this pggit-api runs on (up to $max): install the newer release"
    return 1
  fi
  report ok "migrations" "schema version $have (pggit-api needs $need, runs up to $max)"
}

# Config valid, database reachable, migrations current.
preflight() {
  local failed=0
  check_config_valid || failed=1
  if ! load_connections; then
    return 1
  fi
  check_database || failed=1
  if [[ $failed -eq 0 ]]; then
    check_migrations || failed=1
  fi
  if [[ $failed -ne 0 ]]; then
    cause "pre-flight failed: pggit-api would not become ready; fix the above before starting it"
  fi
  return "$failed"
}

# Waits until /health/ready answers 200, the unit fails, or TIMEOUT.
wait_ready() {
  local timeout=$1 start state
  start=$(now_ms)
  while :; do
    if api GET /health/ready && [[ $HTTP_STATUS == 200 ]]; then
      report ok "ready" "/health/ready answered 200 after $(($(now_ms) - start)) ms"
      return 0
    fi
    state=$(unit_prop ActiveState)
    if [[ $state == failed || $state == inactive ]]; then
      report crit "ready" "$(service_unit) is $state: it exited while starting"
      report_journal
      return 1
    fi
    if (($(now_ms) - start > timeout * 1000)); then
      report crit "ready" "not ready after ${timeout} s (last answer: ${HTTP_ERROR:-HTTP $HTTP_STATUS $(body_jq '.detail // empty')})"
      report_journal
      return 1
    fi
    pause 0.25
  done
}

report_journal() {
  local lines
  lines=$(journal_tail 20)
  [[ -n $lines ]] || return 0
  say "        last lines of its log (journalctl -u $(service_unit)):"
  indented printf '%s\n' "$lines"
  data_set journal "$(jq -Rsc 'split("\n") | map(select(. != ""))' <<<"$lines")"
}

# After a start: ready, warm, deep health (the guide's steps 5 to 7).
after_start() {
  wait_ready "$1" || return 1
  [[ $NO_WARM -eq 1 ]] || warm_cache
  check_deep_health
}

service_options_usage() {
  cat <<'EOF'
options:
  --timeout S   seconds to wait for readiness (default 60)
  --migrate     apply pending migrations (pggit-api migrate) in pre-flight
  --no-warm     do not warm the cache after the start
EOF
}

parse_service_options() {
  TIMEOUT=60 MIGRATE=0 NO_WARM=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || usage_error "--timeout needs seconds"
        TIMEOUT=$2; shift ;;
      --migrate) MIGRATE=1 ;;
      --no-warm) NO_WARM=1 ;;
      *) usage_error "$COMMAND: unknown argument '$1'" ;;
    esac
    shift
  done
}

cmd_start_usage() {
  cat <<'EOF'
usage: pggit-ops start [--timeout S] [--migrate] [--no-warm] [--json]

The guide's startup procedure for pggit-api under systemd:
  1. pre-flight: `pggit-api check-config` (in the .env's folder), the
     database answers as the application role, the schema version is one
     this pggit-api runs on (--migrate applies pending migrations);
  2. systemctl start pggit-api (PostgreSQL and Redis are not started: they
     are shared; start them first if they run on this host);
  3. waits until /health/ready answers 200 (--timeout);
  4. warms the cache; 5. prints /health/deep.
Exit: 0 started and healthy, 1 started but degraded, 2 pre-flight failed or
not ready in time (the log's last lines are printed).
EOF
  service_options_usage
}

cmd_start() {
  parse_service_options "$@"
  section "start $(service_unit)"
  preflight || return 0
  systemctl_then_ready start || true
}

cmd_restart_usage() {
  cat <<'EOF'
usage: pggit-ops restart [--timeout S] [--migrate] [--no-warm] [--json]

The guide's safe restart: the pre-flight of `start` first (a restart that
cannot come back is refused), then systemctl restart: the running daemon
drains (readiness 503, requests and deliveries finish within
SHUTDOWN_TIMEOUT), the new one starts; then the readiness wait, cache warm
and deep health of `start`.
Exit: as for start.
EOF
  service_options_usage
}

cmd_restart() {
  parse_service_options "$@"
  section "restart $(service_unit)"
  preflight || return 0
  restart_service
}

restart_service() { systemctl_then_ready restart; }

# systemctl VERB (start or restart) on the unit, then the readiness wait,
# cache warm and deep health; false when the unit did not come up.
systemctl_then_ready() {
  local verb=$1 out
  if ! out=$(svc "$verb" "$(service_unit)" 2>&1); then
    report crit "systemctl" "systemctl $verb $(service_unit) failed: $(tail -n 1 <<<"$out")"
    report_journal
    return 1
  fi
  action "systemctl $verb $(service_unit)"
  after_start "$TIMEOUT"
}

cmd_stop_usage() {
  cat <<'EOF'
usage: pggit-ops stop [--json]

The guide's shutdown procedure for pggit-api: systemctl stop, which returns
once the daemon has drained (readiness 503, requests and deliveries finish
within SHUTDOWN_TIMEOUT; systemd kills what is left after TimeoutStopSec),
then checks that the unit is inactive and that nothing answers on the API
address any more. Nothing is killed by name, and PostgreSQL and Redis are
left running (other services share them).
Exit: 0 stopped, 2 the stop failed or something still answers.
EOF
}

cmd_stop() {
  [[ $# -eq 0 ]] || usage_error "stop takes no arguments"
  section "stop $(service_unit)"
  local before pid out start after
  before=$(unit_prop ActiveState)
  pid=$(unit_prop MainPID)
  report info "before" "$(service_unit) is ${before:-unknown}${pid:+ (pid $pid)}"
  start=$(now_ms)
  if ! out=$(svc stop "$(service_unit)" 2>&1); then
    report crit "systemctl" "systemctl stop $(service_unit) failed: $(tail -n 1 <<<"$out")"
    return 0
  fi
  action "systemctl stop $(service_unit) ($(($(now_ms) - start)) ms)"
  after=$(unit_prop ActiveState)
  if [[ $after == inactive || $after == failed ]]; then
    report ok "stopped" "$(service_unit) is $after"
  else
    report crit "stopped" "$(service_unit) is still ${after:-unknown}"
  fi
  if api GET /health; then
    report crit "port" "something still answers at $(api_base): a pggit-api that $(service_unit) does not manage (find it with: ss -ltnp)"
  else
    report ok "port" "nothing answers at $(api_base)"
  fi
}

cmd_status_usage() {
  cat <<'EOF'
usage: pggit-ops status [--json]

The unit's state (systemctl show: ActiveState, SubState, MainPID,
NRestarts, since when), /health/ready and /health (version, uptime).
Exit: 0 active and ready, 1 active but not ready (starting, draining, or a
critical check failing), 2 not running.
EOF
}

cmd_status() {
  [[ $# -eq 0 ]] || usage_error "status takes no arguments"
  section "status of $(service_unit)"
  local state sub pid restarts since level=ok
  state=$(unit_prop ActiveState)
  sub=$(unit_prop SubState)
  pid=$(unit_prop MainPID)
  restarts=$(unit_prop NRestarts)
  since=$(unit_prop ActiveEnterTimestamp)
  case $state in
    active) level=ok ;;
    activating | deactivating | reloading) level=warn ;;
    *) level=crit ;;
  esac
  report "$level" "unit" "$(service_unit): ${state:-unknown}${sub:+ ($sub)}${pid:+, pid $pid}${restarts:+, $restarts restarts}${since:+, since $since}"
  data_set unit "$(jq -cn --arg a "$state" --arg s "$sub" --arg p "$pid" \
    --arg r "$restarts" --arg t "$since" \
    '{active_state: $a, sub_state: $s, main_pid: $p, restarts: $r, since: $t}')"
  if ! api GET /health/ready; then
    report crit "ready" "$(api_base): no answer ($HTTP_ERROR)"
    return 0
  fi
  if [[ $HTTP_STATUS == 200 ]]; then
    report ok "ready" "/health/ready: ready"
  else
    report warn "ready" "/health/ready: HTTP $HTTP_STATUS ($(body_jq '.detail // empty'))"
  fi
  check_liveness || true
}
