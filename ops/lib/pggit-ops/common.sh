# shellcheck shell=bash
# pggit-ops: output, settings, connections and HTTP. Sourced by
# ops/bin/pggit-ops; every subcommand file builds on these functions.
#
# Output model: a subcommand reports findings with `report LEVEL NAME
# MESSAGE [DATA_JSON]`, names likely causes with `cause`, records what it
# changed with `action`, adds structured figures with `data_set`, and ends
# with `finish`, which prints the summary (text) or one JSON object (--json)
# and exits with the status of the worst finding:
#   0 OK, 1 WARNING (needs a look), 2 CRITICAL (down, broken, or an action
#   failed), 3 UNKNOWN (could not check); 64 is a usage error.

readonly EXIT_OK=0 EXIT_WARNING=1 EXIT_CRITICAL=2 EXIT_UNKNOWN=3 EXIT_USAGE=64

# Fields of psql and jq rows are separated by the unit separator, not a
# tab: `read` collapses runs of tabs, which would shift empty fields.
readonly US=$'\x1f'
# jq: `usv` renders an array as one such row (null as empty).
readonly JQ_DEFS='def usv: map(if . == null then "" else tostring end) | join("\u001f");'

JSON=0           # --json
ASSUME_YES=0     # --yes
COMMAND=""       # the subcommand, for the JSON object
WORST=0          # 0 ok, 1 warning, 2 unknown, 3 critical (ranked)
CHECKS=()        # JSON objects of report
CAUSES=()        # strings
ACTIONS=()       # strings

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

usage_error() {
  echo "pggit-ops: $*" >&2
  echo "try: pggit-ops --help, or pggit-ops ${COMMAND:-COMMAND} --help" >&2
  exit "$EXIT_USAGE"
}

# Text output only (stdout stays one JSON object with --json).
say() { [[ $JSON -eq 1 ]] || printf '%s\n' "$*"; }
# A heading line of text output.
section() { say "== $*"; }

level_rank() {
  case $1 in
    ok | info) echo 0 ;;
    warn) echo 1 ;;
    unknown) echo 2 ;;
    crit) echo 3 ;;
    *) echo "pggit-ops: internal error: level $1" >&2; echo 3 ;;
  esac
}

# A JSON string, without jq (it is called for every finding).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  s=${s//[[:cntrl:]]/ }
  printf '"%s"' "$s"
}

# report LEVEL NAME MESSAGE [DATA_JSON]: one finding. LEVEL is ok, info,
# warn, crit or unknown.
report() {
  local level=$1 name=$2 message=$3 data=${4:-} rank
  rank=$(level_rank "$level")
  ((rank > WORST)) && WORST=$rank
  if [[ $JSON -eq 1 ]]; then
    CHECKS+=("{\"level\":$(json_str "$level"),\"name\":$(json_str "$name"),\"message\":$(json_str "$message")${data:+,\"data\":$data}}")
  else
    printf '%-7s %s: %s\n' "$level" "$name" "$message"
  fi
}

# cause TEXT: a likely cause, named in the summary.
cause() {
  CAUSES+=("$1")
  say "  likely cause: $1"
}

# action TEXT: something this run changed.
action() {
  ACTIONS+=("$1")
  say "  done: $1"
}

# data_set KEY JSON: a figure for the JSON output (JSON must be valid).
DATA_KEYS=()
DATA_VALUES=()
data_set() {
  [[ $JSON -eq 1 ]] || return 0
  DATA_KEYS+=("$1")
  DATA_VALUES+=("${2:-null}")
}

exit_code() {
  case $WORST in
    0) echo "$EXIT_OK" ;;
    1) echo "$EXIT_WARNING" ;;
    2) echo "$EXIT_UNKNOWN" ;;
    *) echo "$EXIT_CRITICAL" ;;
  esac
}

status_name() {
  case $1 in
    0) echo OK ;;
    1) echo WARNING ;;
    2) echo CRITICAL ;;
    *) echo UNKNOWN ;;
  esac
}

# Prints the summary and exits with the worst finding's status.
finish() {
  local code name
  code=$(exit_code)
  name=$(status_name "$code")
  if [[ $JSON -eq 1 ]]; then
    local items=() i args=()
    for ((i = 0; i < ${#DATA_KEYS[@]}; i++)); do
      args+=(--argjson "v$i" "${DATA_VALUES[i]}")
      items+=("$(json_str "${DATA_KEYS[i]}"): \$v$i")
    done
    local IFS=,
    local checks="[${CHECKS[*]}]" causes="[" actions="[" c sep=""
    for c in "${CAUSES[@]}"; do causes+="$sep$(json_str "$c")"; sep=,; done
    sep=""
    for c in "${ACTIONS[@]}"; do actions+="$sep$(json_str "$c")"; sep=,; done
    jq -n --arg c "$COMMAND" --arg s "$name" --argjson e "$code" \
      --argjson checks "$checks" --argjson causes "$causes]" \
      --argjson actions "$actions]" "${args[@]}" \
      "{command: \$c, status: \$s, exit_code: \$e, checks: \$checks,
        likely_causes: \$causes, actions: \$actions, data: {${items[*]}}}"
  else
    if [[ ${#CAUSES[@]} -gt 0 ]]; then
      echo "likely cause(s):"
      printf '  - %s\n' "${CAUSES[@]}"
    fi
    echo "status: $name (exit $code)"
  fi
  exit "$code"
}

# confirm QUESTION: true with --yes, or when a person at a terminal says y.
confirm() {
  [[ $ASSUME_YES -eq 1 ]] && return 0
  if [[ -t 0 && $JSON -eq 0 ]]; then
    local answer
    read -r -p "$1 [y/N] " answer
    [[ $answer == [yY] || $answer == [yY][eE][sS] ]]
    return
  fi
  return 1
}

# Runs "$@" and prints its output indented, for text output only.
indented() {
  if [[ $JSON -eq 1 ]]; then
    "$@" >/dev/null
  else
    "$@" | sed 's/^/        /'
  fi
}

need_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  report unknown "tools" "$1 not found (Debian package: $2)"
  return 1
}

# ---------------------------------------------------------------------------
# Settings: .env and the environment, as pggit-api reads them
# ---------------------------------------------------------------------------

declare -A DOTENV=()
ENV_FILE=""        # the .env read, or empty
ENV_FILE_ARG=""    # --env-file

# Parses one .env value the way pggit-api does (libpggitops/config/sources.cc):
# '...' literally, "..." with \n \t \" \\ \$ escapes, else up to a " #"
# comment, trimmed. Prints the value; false when malformed.
dotenv_value() {
  local v=$1 out="" i c e
  v=${v#"${v%%[![:space:]]*}"}
  if [[ $v == \'* ]]; then
    v=${v:1}
    [[ $v == *\'* ]] || return 1
    out=${v%%\'*}
    v=${v#*\'}
    v=${v#"${v%%[![:space:]]*}"}
    [[ -z $v || $v == \#* ]] || return 1
    printf '%s' "$out"
    return 0
  fi
  if [[ $v == \"* ]]; then
    v=${v:1}
    for ((i = 0; i < ${#v}; i++)); do
      c=${v:i:1}
      if [[ $c == '"' ]]; then
        v=${v:i+1}
        v=${v#"${v%%[![:space:]]*}"}
        [[ -z $v || $v == \#* ]] || return 1
        printf '%s' "$out"
        return 0
      fi
      if [[ $c != "\\" || $((i + 1)) -eq ${#v} ]]; then
        out+=$c
        continue
      fi
      i=$((i + 1))
      e=${v:i:1}
      case $e in
        n) out+=$'\n' ;;
        t) out+=$'\t' ;;
        '"' | "\\" | '$') out+=$e ;;
        *) out+="\\$e" ;;
      esac
    done
    return 1
  fi
  for ((i = 0; i < ${#v}; i++)); do
    if [[ ${v:i:1} == '#' ]] && ((i == 0)) ||
      [[ ${v:i:1} == '#' && ${v:i-1:1} == [[:blank:]] ]]; then
      v=${v:0:i}
      break
    fi
  done
  v=${v%"${v##*[![:space:]]}"}
  printf '%s' "$v"
}

# Reads FILE into DOTENV. Errors name the line, as pggit-api's do.
read_dotenv() {
  local file=$1 line key value n=0
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line || $line == \#* ]] && continue
    if [[ $line == export[[:blank:]]* ]]; then
      line=${line#export}
      line=${line#"${line%%[![:blank:]]*}"}
    fi
    key=${line%%=*}
    key=${key%"${key##*[![:blank:]]}"}
    if [[ $line != *=* || ! $key =~ ^[A-Za-z0-9_]+$ ]]; then
      echo "pggit-ops: .env file \"$file\" line $n: expected KEY=VALUE" >&2
      return 1
    fi
    if ! value=$(dotenv_value "${line#*=}"); then
      echo "pggit-ops: .env file \"$file\" line $n: $key has an unterminated" \
        "quote or text after the closing quote" >&2
      return 1
    fi
    DOTENV[$key]=$value
  done <"$file"
}

# The .env that pggit-api reads is the one in its working directory: under
# systemd that is /etc/pggit (ops/systemd/pggit-api.service). Order:
# --env-file, PGGIT_ENV_FILE, ./.env, /etc/pggit/.env.
load_settings() {
  local candidate
  for candidate in "$ENV_FILE_ARG" "${PGGIT_ENV_FILE:-}" ./.env /etc/pggit/.env; do
    [[ -n $candidate ]] || continue
    if [[ -n $ENV_FILE_ARG && $candidate == "$ENV_FILE_ARG" ]] ||
      [[ -n ${PGGIT_ENV_FILE:-} && $candidate == "${PGGIT_ENV_FILE:-}" ]]; then
      [[ -r $candidate ]] || {
        echo "pggit-ops: cannot read the .env file $candidate" >&2
        exit "$EXIT_UNKNOWN"
      }
    fi
    [[ -f $candidate && -r $candidate ]] || continue
    ENV_FILE=$(readlink -f "$candidate")
    read_dotenv "$ENV_FILE" || exit "$EXIT_UNKNOWN"
    return 0
  done
}

# setting KEY [DEFAULT]: the environment wins over .env, as for pggit-api.
setting() {
  local key=$1
  if [[ -n ${!key+x} ]]; then
    printf '%s' "${!key}"
  elif [[ -n ${DOTENV[$key]+x} ]]; then
    printf '%s' "${DOTENV[$key]}"
  else
    printf '%s' "${2:-}"
  fi
}

# The folder pggit-api runs in (it reads .env there).
daemon_dir() {
  if [[ -n $ENV_FILE ]]; then dirname "$ENV_FILE"; else pwd; fi
}

# ---------------------------------------------------------------------------
# PostgreSQL connections: a connection string becomes PG* variables, so no
# password (and no URL) ever appears in a process's arguments.
# ---------------------------------------------------------------------------

# libpq keyword -> environment variable. Keywords without a variable that
# cannot matter to these tools are accepted and dropped.
declare -A PG_ENV_OF=(
  [host]=PGHOST [hostaddr]=PGHOSTADDR [port]=PGPORT [dbname]=PGDATABASE
  [user]=PGUSER [password]=PGPASSWORD [passfile]=PGPASSFILE
  [options]=PGOPTIONS [application_name]=PGAPPNAME [sslmode]=PGSSLMODE
  [requiressl]=PGREQUIRESSL [sslcert]=PGSSLCERT [sslkey]=PGSSLKEY
  [sslrootcert]=PGSSLROOTCERT [sslcrl]=PGSSLCRL [sslcrldir]=PGSSLCRLDIR
  [sslsni]=PGSSLSNI [sslcompression]=PGSSLCOMPRESSION
  [requirepeer]=PGREQUIREPEER [ssl_min_protocol_version]=PGSSLMINPROTOCOLVERSION
  [ssl_max_protocol_version]=PGSSLMAXPROTOCOLVERSION [gssencmode]=PGGSSENCMODE
  [krbsrvname]=PGKRBSRVNAME [gsslib]=PGGSSLIB [connect_timeout]=PGCONNECT_TIMEOUT
  [client_encoding]=PGCLIENTENCODING [target_session_attrs]=PGTARGETSESSIONATTRS
  [service]=PGSERVICE [channel_binding]=PGCHANNELBINDING
)
readonly PG_DROPPED_KEYWORDS=" fallback_application_name keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout "

pct_decode() {
  local s=${1//\\/\\\\}
  printf '%b' "${s//%/\\x}"
}

# conn_add ARRAY KEYWORD VALUE: appends VAR=value for the keyword.
conn_add() {
  local -n _out=$1
  local var=${PG_ENV_OF[$2]:-}
  if [[ -z $var ]]; then
    [[ $PG_DROPPED_KEYWORDS == *" $2 "* ]] && return 0
    echo "pggit-ops: unsupported connection keyword '$2'" >&2
    return 1
  fi
  _out+=("$var=$3")
}

# split_host_port ITEM: HP_HOST and HP_PORT (empty when absent) of "host",
# "host:port", "[v6]" or "[v6]:port".
split_host_port() {
  local item=$1
  HP_PORT=""
  if [[ $item == \[* ]]; then
    HP_HOST=${item#\[}
    HP_HOST=${HP_HOST%%\]*}
    [[ $item != *\]:* ]] || HP_PORT=${item##*\]:}
  elif [[ $item == *:* ]]; then
    HP_HOST=${item%%:*}
    HP_PORT=${item#*:}
  else
    HP_HOST=$item
  fi
}

# Parses a postgresql:// URI (as libpq does) into ARRAY.
parse_pg_uri() {
  local -n _arr=$1
  local uri=$2 rest query="" authority path="" userinfo="" hostlist item
  local hosts=() ports=() any_port=0
  rest=${uri#*://}
  # libpq: the userinfo ends at the first '@' before any '/' ("u:pw?x@h"
  # is the password "pw?x"); the query starts after it.
  authority=${rest%%/*}
  if [[ $authority == *@* ]]; then
    userinfo=${rest%%@*}
    rest=${rest#*@}
  fi
  if [[ $rest == *\?* ]]; then
    query=${rest#*\?}
    rest=${rest%%\?*}
  fi
  authority=${rest%%/*}
  [[ $rest == */* ]] && path=${rest#*/}
  if [[ -n $userinfo ]]; then
    if [[ $userinfo == *:* ]]; then
      [[ -z ${userinfo%%:*} ]] || _arr+=("PGUSER=$(pct_decode "${userinfo%%:*}")")
      _arr+=("PGPASSWORD=$(pct_decode "${userinfo#*:}")")
    else
      _arr+=("PGUSER=$(pct_decode "$userinfo")")
    fi
  fi
  IFS=, read -r -a hostlist <<<"$authority"
  for item in "${hostlist[@]}"; do
    split_host_port "$item"
    hosts+=("$(pct_decode "$HP_HOST")")
    ports+=("$HP_PORT")
    [[ -z $HP_PORT ]] || any_port=1
  done
  if [[ ${#hosts[@]} -gt 0 && -n ${hosts[*]} ]]; then
    _arr+=("PGHOST=$(IFS=,; echo "${hosts[*]}")")
  fi
  [[ $any_port -eq 0 ]] || _arr+=("PGPORT=$(IFS=,; echo "${ports[*]}")")
  [[ -z $path ]] || _arr+=("PGDATABASE=$(pct_decode "$path")")
  if [[ -n $query ]]; then
    local pairs pair
    IFS='&' read -r -a pairs <<<"$query"
    for pair in "${pairs[@]}"; do
      [[ -n $pair ]] || continue
      conn_add _arr "$(pct_decode "${pair%%=*}")" "$(pct_decode "${pair#*=}")" ||
        return 1
    done
  fi
}

# Parses a libpq keyword/value string ("host=h dbname='a b'") into ARRAY.
parse_pg_kv() {
  local -n _kv=$1
  local s=$2 i=0 n=${#2} key value c
  while ((i < n)); do
    while ((i < n)) && [[ ${s:i:1} == [[:space:]] ]]; do i=$((i + 1)); done
    ((i < n)) || break
    key=""
    while ((i < n)) && [[ ${s:i:1} != [=[:space:]] ]]; do
      key+=${s:i:1}
      i=$((i + 1))
    done
    while ((i < n)) && [[ ${s:i:1} == [[:space:]] ]]; do i=$((i + 1)); done
    if [[ ${s:i:1} != = ]]; then
      echo "pggit-ops: malformed connection string near '$key'" >&2
      return 1
    fi
    i=$((i + 1))
    while ((i < n)) && [[ ${s:i:1} == [[:space:]] ]]; do i=$((i + 1)); done
    value=""
    if [[ ${s:i:1} == "'" ]]; then
      i=$((i + 1))
      while ((i < n)); do
        c=${s:i:1}
        if [[ $c == "\\" ]]; then
          i=$((i + 1))
          value+=${s:i:1}
        elif [[ $c == "'" ]]; then
          break
        else
          value+=$c
        fi
        i=$((i + 1))
      done
      if ((i >= n)); then
        echo "pggit-ops: unterminated quote in connection string" >&2
        return 1
      fi
      i=$((i + 1))
    else
      while ((i < n)) && [[ ${s:i:1} != [[:space:]] ]]; do
        c=${s:i:1}
        if [[ $c == "\\" ]]; then
          i=$((i + 1))
          c=${s:i:1}
        fi
        value+=$c
        i=$((i + 1))
      done
    fi
    conn_add _kv "$key" "$value" || return 1
  done
}

# parse_conninfo ARRAY STRING: either form.
parse_conninfo() {
  case $2 in
    postgresql://* | postgres://*) parse_pg_uri "$1" "$2" ;;
    *=*) parse_pg_kv "$1" "$2" ;;
    *) parse_pg_kv "$1" "dbname=$2" ;;
  esac
}

# conn_get ARRAY VAR: the value of VAR=... in ARRAY (last wins).
conn_get() {
  local -n _c=$1
  local kv value=""
  for kv in "${_c[@]}"; do
    [[ ${kv%%=*} != "$2" ]] || value=${kv#*=}
  done
  printf '%s' "$value"
}

APP_CONN=()      # PG* settings of DATABASE_URL
ADMIN_CONN=()    # PG* settings of PGGIT_ADMIN_URL (empty: the default)
ADMIN_DEFAULT=0  # 1: postgres over the local socket
APP_DB=""        # the application's database
APP_ROLE=""      # the application's role

# Reads DATABASE_URL and PGGIT_ADMIN_URL. Returns false (after a report)
# when DATABASE_URL is missing or malformed.
load_connections() {
  local url admin
  url=$(setting DATABASE_URL)
  if [[ -z $url ]]; then
    report unknown "config" "DATABASE_URL is not set (in ${ENV_FILE:-the environment; no .env found})"
    return 1
  fi
  APP_CONN=()
  if ! parse_conninfo APP_CONN "$url"; then
    report unknown "config" "DATABASE_URL cannot be parsed"
    return 1
  fi
  APP_ROLE=$(conn_get APP_CONN PGUSER)
  [[ -n $APP_ROLE ]] || APP_ROLE=$(id -un)
  APP_DB=$(conn_get APP_CONN PGDATABASE)
  [[ -n $APP_DB ]] || APP_DB=$APP_ROLE
  admin=$(setting PGGIT_ADMIN_URL)
  ADMIN_CONN=()
  ADMIN_DEFAULT=0
  if [[ -z $admin ]]; then
    ADMIN_DEFAULT=1
  elif ! parse_conninfo ADMIN_CONN "$admin"; then
    report unknown "config" "PGGIT_ADMIN_URL cannot be parsed"
    return 1
  fi
}

# user@host:port/db of the application's connection, without the password.
app_target() {
  local host port
  host=$(conn_get APP_CONN PGHOST)
  port=$(conn_get APP_CONN PGPORT)
  printf '%s@%s%s/%s' "$APP_ROLE" "${host:-local socket}" "${port:+:$port}" \
    "$APP_DB"
}

admin_role() {
  if [[ $ADMIN_DEFAULT -eq 1 ]]; then
    echo postgres
  else
    local u
    u=$(conn_get ADMIN_CONN PGUSER)
    echo "${u:-$(id -un)}"
  fi
}

clear_pg_env() {
  local v
  for v in $(compgen -e | grep '^PG' || true); do
    [[ $v == PGGIT_* ]] || unset "$v"
  done
}

# as_app CMD...: CMD with the application's connection in its environment.
as_app() {
  (
    clear_pg_env
    local kv
    for kv in "${APP_CONN[@]}"; do export "${kv?}"; done
    exec "$@"
  )
}

# as_admin CMD...: CMD connected as PGGIT_ADMIN_URL, or by default as the
# postgres role over the local socket (as the postgres user when root, so
# peer authentication lets it in).
as_admin() {
  (
    clear_pg_env
    local kv
    if [[ $ADMIN_DEFAULT -eq 1 ]]; then
      export PGUSER=postgres
      if [[ $EUID -eq 0 ]] && id postgres >/dev/null 2>&1; then
        cd / && exec runuser -u postgres -- "$@"
      fi
    else
      for kv in "${ADMIN_CONN[@]}"; do export "${kv?}"; done
    fi
    exec "$@"
  )
}

readonly PSQL_OPTS=(-X -q -v ON_ERROR_STOP=1 -P pager=off)

# app_sql [PSQL_ARGS...]: SQL from stdin on the application's database, as
# the application role; unaligned, tuples only, fields separated by tabs.
app_sql() {
  as_app psql "${PSQL_OPTS[@]}" -A -t -F "$US" -d "$APP_DB" "$@"
}

# admin_sql DB [PSQL_ARGS...]: the same as the admin role on DB.
admin_sql() {
  local db=$1
  shift
  as_admin psql "${PSQL_OPTS[@]}" -A -t -F "$US" -d "$db" "$@"
}

# The schema version recorded in the current database (0: never migrated).
readonly SCHEMA_VERSION_SQL="SELECT to_regclass('pggit.schema_migrations') IS NOT NULL AS migrated \\gset
\\if :migrated
SELECT coalesce(max(version), 0) FROM pggit.schema_migrations;
\\else
SELECT 0;
\\endif"

# The folder of ops/sql (source tree or installed).
sql_file() { printf '%s/sql/%s' "$OPS_ROOT" "$1"; }

# app_sql_file FILE [PSQL_ARGS...]: one of ops/sql, as the application role.
app_sql_file() {
  local file
  file=$(sql_file "$1")
  shift
  app_sql -f "$file" "$@"
}

# admin_sql_file FILE DB [PSQL_ARGS...]: the same as the admin role on DB.
admin_sql_file() {
  local file
  file=$(sql_file "$1")
  shift
  admin_sql "$1" -f "$file" "${@:2}"
}

# Rows of `app_sql` as a JSON array of objects with the given column names.
rows_json() {
  jq -Rsc --arg cols "$1" '($cols | split(",")) as $c |
    split("\n") | map(select(. != "") | split("\u001f") |
      [range(0; $c | length) as $i | {($c[$i]): .[$i]}] | add)'
}

# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

# The daemon's base URL: API_URL, else http://API_HOST:API_PORT (a wildcard
# address becomes loopback).
api_base() {
  local url host port
  url=$(setting API_URL)
  if [[ -n $url ]]; then
    printf '%s' "${url%/}"
    return
  fi
  host=$(setting API_HOST 127.0.0.1)
  port=$(setting API_PORT 8000)
  case $host in
    0.0.0.0 | "") host=127.0.0.1 ;;
    :: | "[::]") host="[::1]" ;;
    *:*) host="[$host]" ;;
  esac
  printf 'http://%s:%s' "$host" "$port"
}

# Escapes a string for a curl config file ("..." value).
curl_quote() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

HTTP_STATUS=0
DEEP_DB_STATUS=""  # database.status of the last /health/deep
HTTP_BODY=""
HTTP_ERROR=""

# api METHOD PATH [JSON_BODY]: sets HTTP_STATUS and HTTP_BODY; false (with
# HTTP_ERROR) when no HTTP answer came. The API key and the body travel in
# curl's config on stdin, never in its arguments.
api() {
  local method=$1 path=$2 body=${3:-} key cfg out rc errfile
  key=$(setting PGGIT_API_KEY)
  cfg="url = $(curl_quote "$(api_base)$path")"$'\n'
  [[ -z $key ]] || cfg+="header = $(curl_quote "Authorization: Bearer $key")"$'\n'
  if [[ -n $body ]]; then
    cfg+="header = \"Content-Type: application/json\""$'\n'
    cfg+="data-binary = $(curl_quote "$body")"$'\n'
  fi
  errfile=$(mktemp)
  out=$(curl -sS -K - -X "$method" --connect-timeout 3 \
    --max-time "${HTTP_TIMEOUT:-15}" -w '\n%{http_code}' <<<"$cfg" 2>"$errfile")
  rc=$?
  HTTP_ERROR=$(head -c 300 "$errfile")
  rm -f "$errfile"
  HTTP_STATUS=${out##*$'\n'}
  HTTP_BODY=${out%$'\n'*}
  [[ $out == *$'\n'* ]] || HTTP_BODY=""
  if [[ $rc -ne 0 || $HTTP_STATUS == 000 ]]; then
    HTTP_STATUS=0
    [[ -n $HTTP_ERROR ]] || HTTP_ERROR="curl exit status $rc"
    HTTP_ERROR=${HTTP_ERROR#curl: }
    return 1
  fi
}

# jq [OPTIONS] FILTER on HTTP_BODY (raw output; `usv` defined), printing
# nothing when it is not JSON.
body_jq() {
  local opts=()
  while [[ ${1:-} == -* ]]; do
    opts+=("$1")
    shift
  done
  jq -r "${opts[@]}" "$JQ_DEFS $1" <<<"$HTTP_BODY" 2>/dev/null || true
}

# A metric's value from /metrics text (first series matching the regex),
# or empty.
metric_value() {
  local name=$1 text=$2
  awk -v n="$name" '$1 ~ ("^" n "([{]|$)") { print $2; exit }' <<<"$text"
}

# num_cmp A OP B: a numeric comparison (OP one of < <= > >= ==) of decimal
# numbers; false when either is not a number.
num_cmp() {
  awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
    if (a !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ || b !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) exit 1
    a += 0; b += 0
    if (op == "<") exit !(a < b); if (op == "<=") exit !(a <= b)
    if (op == ">") exit !(a > b); if (op == ">=") exit !(a >= b)
    exit !(a == b) }'
}

# Sleeps a fraction of a second without a fork where possible.
pause() { sleep "$1"; }

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }
