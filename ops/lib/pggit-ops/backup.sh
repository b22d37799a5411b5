# shellcheck shell=bash
# pggit-ops backup, restore, verify-backup.
#
# A backup is three files in BACKUP_DIR (default /var/backups/pggit; the
# guide's /backups/pggit/*.sql.gz):
#   pggit-DB-YYYYmmddTHHMMSSZ.dump                pg_dump custom format
#   pggit-DB-YYYYmmddTHHMMSSZ.dump.sha256         sha256sum of the dump
#   pggit-DB-YYYYmmddTHHMMSSZ.dump.manifest.json  rows per table (counted
#       in pg_dump's own snapshot) and the database's settings
# The database's settings (pg_db_role_setting: search_path = pggit, public,
# which the guide's unqualified queries need) are not in a dump, and
# pg_restore without --create does not restore them: restore applies the
# manifest's settings itself. Roles and their grants are not in a dump
# either: the target database is made by ops/scripts/provision-db (role,
# database, grants, extensions) before pg_restore runs.

readonly MANIFEST_FORMAT="pggit-ops-backup/1"

backup_dir() { setting BACKUP_DIR /var/backups/pggit; }

# Runs ops/scripts/provision-db as the admin role for database DB (owned by
# the application role). On a cluster without the role, the role is created
# with DATABASE_URL's password (in the environment, never in arguments).
provision_database() {
  local db=$1 out exists password
  exists=$(admin_sql postgres -v role="$APP_ROLE" \
    <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'role'" 2>&1) || {
    report crit "admin" "cannot connect as $(admin_role) (PGGIT_ADMIN_URL): $(head -n 1 <<<"$exists")"
    return 1
  }
  local script=$OPS_ROOT/scripts/provision-db
  local args=(--superuser "$(admin_role)" --database "$db" --role "$APP_ROLE")
  password=""
  if [[ $exists == 0 ]]; then
    password=$(conn_get APP_CONN PGPASSWORD)
    report info "provision" "role $APP_ROLE does not exist on this cluster (a new one): provision-db creates it${password:+ with the password of DATABASE_URL}"
  fi
  local rc=0
  if [[ -n $password ]]; then
    out=$(PGGIT_DB_PASSWORD=$password as_admin "$script" "${args[@]}" 2>&1) || rc=$?
  else
    out=$(as_admin env -u PGGIT_DB_PASSWORD "$script" "${args[@]}" 2>&1) || rc=$?
  fi
  if [[ $rc -ne 0 ]]; then
    report crit "provision" "provision-db for $db failed: $(grep -m1 error <<<"$out" || tail -n 1 <<<"$out")"
    return 1
  fi
  [[ $exists != 0 ]] || action "provision-db created role $APP_ROLE"
}

drop_database() {
  admin_sql postgres -v db="$1" >/dev/null 2>&1 <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \gexec
SQL
}

database_exists() {
  [[ $(admin_sql postgres -v db="$1" \
    <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'" 2>/dev/null) == 1 ]]
}

# Checks the three files and the checksum; sets MANIFEST.
MANIFEST=""
check_backup_files() {
  local file=$1 sum expected actual
  if [[ ! -s $file ]]; then
    report crit "file" "$file does not exist or is empty"
    return 1
  fi
  sum=$file.sha256
  MANIFEST=$file.manifest.json
  if [[ ! -r $sum ]]; then
    report crit "checksum" "$sum is missing: the dump cannot be trusted"
    return 1
  fi
  expected=$(awk 'NR == 1 { print $1 }' "$sum")
  actual=$(sha256sum "$file" | awk '{ print $1 }')
  if [[ $expected != "$actual" ]]; then
    report crit "checksum" "$(basename "$file"): sha256 $actual, the backup recorded $expected: the file is corrupt or truncated"
    return 1
  fi
  report ok "checksum" "sha256 $actual matches"
  if ! jq -e --arg f "$MANIFEST_FORMAT" '.format == $f and (.tables | type == "object")' \
    "$MANIFEST" >/dev/null 2>&1; then
    report crit "manifest" "$MANIFEST is missing or not a $MANIFEST_FORMAT manifest"
    return 1
  fi
  if [[ $(jq -r .sha256 "$MANIFEST") != "$actual" ]]; then
    report crit "manifest" "the manifest belongs to another dump (sha256 $(jq -r .sha256 "$MANIFEST"))"
    return 1
  fi
  report ok "manifest" "$(jq '.tables | length' "$MANIFEST") tables, $(jq '[.tables[]] | add // 0' "$MANIFEST") rows, $(jq '.settings | length' "$MANIFEST") setting(s), taken $(jq -r .created_at "$MANIFEST") from database $(jq -r .database.name "$MANIFEST")"
}

# pg_restore FILE into DB as the admin role, all or nothing.
restore_into() {
  local db=$1 file=$2 out
  if ! out=$(as_admin pg_restore --single-transaction --exit-on-error \
    --dbname="$db" "$file" 2>&1); then
    report crit "pg_restore" "into $db: $(grep -m1 -i error <<<"$out" || tail -n 1 <<<"$out")"
    return 1
  fi
  report ok "pg_restore" "restored $(basename "$file") into $db"
}

# Applies the manifest's settings to DB (ALTER DATABASE DB SET ...; ALTER
# ROLE r IN DATABASE DB SET ...). A value is set with set_config and stored
# FROM CURRENT, so lists such as search_path keep their form.
apply_settings() {
  local db=$1 manifest=$2 role cfg name value out
  while IFS=$US read -r role cfg; do
    [[ -n $cfg ]] || continue
    name=${cfg%%=*}
    value=${cfg#*=}
    if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_.]*$ ]]; then
      report crit "settings" "refusing a setting with an odd name: $name"
      return 1
    fi
    if ! out=$(admin_sql "$db" -v db="$db" -v role="$role" -v value="$value" 2>&1 <<SQL
SELECT set_config('$name', :'value', false) \\gset
SELECT CASE WHEN :'role' = ''
            THEN format('ALTER DATABASE %I SET $name FROM CURRENT', :'db')
            ELSE format('ALTER ROLE %I IN DATABASE %I SET $name FROM CURRENT',
                        :'role', :'db') END \\gexec
SQL
    ); then
      report crit "settings" "$cfg: $(head -n 1 <<<"$out")"
      return 1
    fi
    action "ALTER ${role:+ROLE $role IN }DATABASE $db SET $name = $value"
  done < <(jq -r "$JQ_DEFS"' .settings[] | [.role, .setting] | usv' "$manifest")
}

# Rows per table of DB (admin) against the manifest; false on a mismatch.
compare_with_manifest() {
  local db=$1 manifest=$2 counts diff out
  if ! counts=$(admin_sql_file backup-table-counts.sql "$db" 2>&1); then
    report crit "compare" "cannot count the rows of $db: $(head -n 1 <<<"$counts")"
    return 1
  fi
  diff=$(jq -Rn --slurpfile m "$manifest" '
    ([inputs | select(. != "") | split("\u001f") | {(.[0]): (.[1] | tonumber)}] | add // {}) as $have
    | $m[0].tables as $want
    | [($want | keys[]) as $t | select($have[$t] != $want[$t])
        | "\($t): \($have[$t] // "missing") rows, the backup has \($want[$t])"]
      + [($have | keys[]) as $t | select($want[$t] == null)
        | "\($t): \($have[$t]) rows, not in the backup"]
    | .[]' <<<"$counts")
  if [[ -n $diff ]]; then
    while IFS= read -r out; do report crit "compare" "$out"; done <<<"$diff"
    return 1
  fi
  report ok "compare" "every table of the backup has its rows ($(jq '.tables | length' "$manifest") tables, $(jq '[.tables[]] | add // 0' "$manifest") rows)"
  if ! out=$(admin_sql_file backup-database-settings.sql "$db" 2>&1); then
    report crit "compare" "cannot read the settings of $db: $(head -n 1 <<<"$out")"
    return 1
  fi
  diff=$(jq -Rn --slurpfile m "$manifest" '
    [inputs | select(. != "")] as $have
    | [$m[0].settings[] | "\(.role)\u001f\(.setting)"] as $want
    | if ($have | sort) == ($want | sort) then empty
      else "settings of the restore: \($have | join("; ")); the backup: \($want | join("; "))" end' <<<"$out")
  if [[ -n $diff ]]; then
    report crit "compare" "$diff"
    return 1
  fi
  report ok "compare" "database settings as in the backup ($(jq -r '[.settings[].setting] | join("; ")' "$manifest"))"
}

# The newest backup in BACKUP_DIR.
latest_backup() {
  local dir
  dir=$(backup_dir)
  find "$dir" -maxdepth 1 -name 'pggit-*.dump' -type f -printf '%T@ %p\n' \
    2>/dev/null | sort -rn | awk 'NR == 1 { print $2 }'
}

cmd_backup_usage() {
  cat <<'EOF'
usage: pggit-ops backup [--json]

Backs up the application's database (DATABASE_URL, as its role) into
BACKUP_DIR (default /var/backups/pggit):
  pggit-DB-STAMP.dump                pg_dump --format=custom
  pggit-DB-STAMP.dump.sha256         its checksum (sha256sum -c reads it)
  pggit-DB-STAMP.dump.manifest.json  rows of every table, counted in the
                                     dump's own snapshot, and the database's
                                     settings (search_path)
then deletes backups older than BACKUP_RETENTION_DAYS (default 7; 0 keeps
all). A timer runs it daily; `pggit-ops verify-backup` proves a backup
restores (the weekly maintenance does).
Exit: 0 done, 2 failed (nothing half-written is left behind).
EOF
}

cmd_backup() {
  [[ $# -eq 0 ]] || usage_error "backup takes no arguments"
  load_connections || return 0
  local dir days stamp base
  dir=$(backup_dir)
  days=$(setting BACKUP_RETENTION_DAYS 7)
  [[ $days =~ ^[0-9]+$ ]] || { report unknown "config" "BACKUP_RETENTION_DAYS=$days is not a whole number of days"; return 0; }
  section "backup of $(app_target) into $dir"
  # Readable by the pggit group (the weekly test restore runs as postgres
  # with that group), by nobody else.
  umask 027
  need_tool pg_dump postgresql-client-15 || return 0
  if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
    report crit "backup" "cannot write to BACKUP_DIR $dir"
    return 0
  fi
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  base=$dir/pggit-$APP_DB-$stamp.dump
  if dump_with_manifest "$base"; then
    prune_backups "$dir" "$days" "$base"
  fi
  rm -f "$base.partial" "$base.sha256.partial" "$base.manifest.json.partial"
}

# pg_dump in the snapshot of a transaction that also counts the rows, so
# the manifest describes exactly the dump.
dump_with_manifest() {
  local base=$1 snapshot line counts="" settings="" meta schema out start
  start=$(now_ms)
  coproc SNAP { app_sql 2>&1; }
  local to=${SNAP[1]} from=${SNAP[0]}
  printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" \
    "SELECT pg_export_snapshot();" >&"$to"
  if ! read -r -t 30 snapshot <&"$from" || [[ ! $snapshot =~ ^[0-9A-F-]+$ ]]; then
    report crit "backup" "cannot open a snapshot as $(app_target): ${snapshot:-no answer}"
    end_coproc "$to"
    return 1
  fi
  if ! out=$(as_app pg_dump --format=custom --snapshot="$snapshot" \
    --file="$base.partial" --dbname="$APP_DB" 2>&1); then
    report crit "pg_dump" "$(head -n 1 <<<"$out")"
    end_coproc "$to"
    return 1
  fi
  cat "$(sql_file backup-table-counts.sql)" >&"$to"
  printf '%s\n' '\echo __pggit_ops_end__' >&"$to"
  while read -r -t 600 line <&"$from" && [[ $line != __pggit_ops_end__ ]]; do
    counts+=$line$'\n'
  done
  cat "$(sql_file backup-database-settings.sql)" >&"$to"
  printf '%s\n' '\echo __pggit_ops_end__' >&"$to"
  while read -r -t 60 line <&"$from" && [[ $line != __pggit_ops_end__ ]]; do
    settings+=$line$'\n'
  done
  printf '%s\n' "$SCHEMA_VERSION_SQL" "SELECT current_setting('server_version'), pg_encoding_to_char(encoding), pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database();" \
    '\echo __pggit_ops_end__' >&"$to"
  read -r -t 60 schema <&"$from"
  read -r -t 60 meta <&"$from"
  read -r -t 60 line <&"$from"
  end_coproc "$to"
  if [[ $line != __pggit_ops_end__ ]] || grep -q '^ERROR' <<<"$counts$settings"; then
    report crit "backup" "counting rows in the dump's snapshot failed: $(grep -m1 ERROR <<<"$counts$settings$meta")"
    return 1
  fi
  write_manifest "$base" "$snapshot" "$counts" "$settings" "$schema$US$meta" || return 1
  if ! mv "$base.sha256.partial" "$base.sha256" ||
    ! mv "$base.manifest.json.partial" "$base.manifest.json" ||
    ! mv "$base.partial" "$base"; then
    report crit "backup" "cannot rename the finished files in $(dirname "$base")"
    return 1
  fi
  data_set backup "$(jq -c --arg f "$base" '{file: $f, sha256: .sha256,
    size_bytes: .size_bytes, tables: (.tables | length),
    rows: ([.tables[]] | add // 0)}' "$base.manifest.json")"
  report ok "backup" "$base ($(du -h "$base" | cut -f1), $(jq '.tables | length' "$base.manifest.json") tables, $(jq '[.tables[]] | add // 0' "$base.manifest.json") rows, $(($(now_ms) - start)) ms)"
  action "wrote $base, .sha256 and .manifest.json"
}

# Ends the snapshot transaction and its psql.
end_coproc() {
  local fd=$1
  { printf '%s\n' "COMMIT;" '\q' >&"$fd"; } 2>/dev/null || true
  exec {fd}>&-
  [[ -z ${SNAP_PID:-} ]] || wait "$SNAP_PID" 2>/dev/null || true
}

write_manifest() {
  local base=$1 snapshot=$2 counts=$3 settings=$4 meta=$5 sum version
  local server_version schema encoding owner
  IFS=$US read -r schema server_version encoding owner <<<"$meta"
  sum=$(sha256sum "$base.partial" | awk '{ print $1 }')
  printf '%s  %s\n' "$sum" "$(basename "$base")" >"$base.sha256.partial"
  version=$(pg_dump --version | awk '{ print $3 }')
  if ! jq -n --arg format "$MANIFEST_FORMAT" --arg created "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg db "$APP_DB" --arg owner "$owner" --arg encoding "$encoding" \
    --arg server "$server_version" --arg pgdump "$version" \
    --argjson schema "${schema:-0}" --arg file "$(basename "$base")" \
    --argjson size "$(stat -c %s "$base.partial")" --arg sum "$sum" \
    --arg snapshot "$snapshot" --arg counts "$counts" --arg settings "$settings" \
    '{format: $format, created_at: $created,
      database: {name: $db, owner: $owner, encoding: $encoding},
      server_version: $server, pg_dump_version: $pgdump,
      pggit_schema_version: $schema, dump_file: $file, size_bytes: $size,
      sha256: $sum, snapshot: $snapshot,
      tables: ($counts | split("\n") | map(select(. != "") | split("\u001f")
               | {(.[0]): (.[1] | tonumber)}) | add // {}),
      settings: ($settings | split("\n") | map(select(. != "") | split("\u001f")
               | {role: .[0], setting: (.[1:] | join("\t"))}))}' \
    >"$base.manifest.json.partial"; then
    report crit "manifest" "cannot write $base.manifest.json"
    return 1
  fi
}

# Deletes backups (all three files) older than DAYS, never KEEP.
prune_backups() {
  local dir=$1 days=$2 keep=$3 file n=0
  if [[ $days -eq 0 ]]; then
    report info "retention" "BACKUP_RETENTION_DAYS=0: every backup is kept"
    return 0
  fi
  while IFS= read -r file; do
    [[ -n $file && $file != "$keep" ]] || continue
    rm -f "$file" "$file.sha256" "$file.manifest.json"
    n=$((n + 1))
  done < <(find "$dir" -maxdepth 1 -type f -name 'pggit-*.dump' \
    -mmin +$((days * 1440)) 2>/dev/null)
  find "$dir" -maxdepth 1 -type f -name 'pggit-*.partial' -mmin +1440 -delete 2>/dev/null
  report ok "retention" "deleted $n backup(s) older than $days day(s); $(find "$dir" -maxdepth 1 -name 'pggit-*.dump' -type f | wc -l) kept"
  [[ $n -eq 0 ]] || action "deleted $n backup(s) older than $days day(s)"
}

cmd_verify_backup_usage() {
  cat <<'EOF'
usage: pggit-ops verify-backup [FILE] [--json]

Proves that a backup restores (FILE, default the newest in BACKUP_DIR):
checks its sha256 and manifest, makes a scratch database with provision-db
(as PGGIT_ADMIN_URL), restores the dump into it, applies the manifest's
settings, compares every table's rows and the settings with the manifest,
runs the guide's unqualified queries there as the application role, and
drops the scratch database.
Exit: 0 the backup restores, 2 it does not (corrupt, truncated, missing
rows, a query fails), 3 no backup to verify.
EOF
}

SCRATCH_DB=""
drop_scratch() {
  [[ -n $SCRATCH_DB ]] || return 0
  drop_database "$SCRATCH_DB" || true
  SCRATCH_DB=""
}

cmd_verify_backup() {
  [[ $# -le 1 ]] || usage_error "verify-backup takes at most one FILE"
  load_connections || return 0
  local file=${1:-}
  if [[ -z $file ]]; then
    file=$(latest_backup)
    if [[ -z $file ]]; then
      report unknown "backup" "no backup in $(backup_dir) (pggit-ops backup makes one)"
      return 0
    fi
  fi
  section "verify $file"
  check_backup_files "$file" || return 0
  local out
  if ! out=$(pg_restore --list "$file" 2>&1); then
    report crit "archive" "pg_restore cannot read it: $(head -n 1 <<<"$out")"
    return 0
  fi
  report ok "archive" "$(grep -c '^[0-9]' <<<"$out") entries in the archive"
  SCRATCH_DB="pggit_verify_$(date +%s)_$$"
  trap drop_scratch EXIT
  provision_database "$SCRATCH_DB" &&
    restore_into "$SCRATCH_DB" "$file" &&
    apply_settings "$SCRATCH_DB" "$MANIFEST" &&
    compare_with_manifest "$SCRATCH_DB" "$MANIFEST" &&
    run_guide_queries "$SCRATCH_DB"
  drop_scratch
  trap - EXIT
  report info "scratch" "dropped the scratch database"
}

# The guide's queries, unqualified, as the application role on DB.
run_guide_queries() {
  local db=$1 out
  if ! out=$(as_app psql "${PSQL_OPTS[@]}" -A -t -d "$db" \
    -f "$(sql_file verify-guide-queries.sql)" 2>&1); then
    report crit "queries" "the guide's queries fail in the restore: $(grep -m1 ERROR <<<"$out" || head -n 1 <<<"$out")"
    return 1
  fi
  report ok "queries" "the guide's unqualified queries run as $APP_ROLE in the restore"
}

cmd_restore_usage() {
  cat <<'EOF'
usage: pggit-ops restore FILE [--into DB] [--force] [--json]

Restores a backup made by `pggit-ops backup` into database DB (default:
DATABASE_URL's database) on the cluster of PGGIT_ADMIN_URL:
  1. checks the checksum and the manifest;
  2. provision-db makes a new database owned by the application role (and
     the role with its grants and extensions, on a new cluster: roles are
     not in a dump; the role gets DATABASE_URL's password);
  3. pg_restore into it in one transaction; 4. the manifest's settings
     (ALTER DATABASE ... SET search_path ...); 5. every table's rows are
     compared with the manifest;
  6. only then does it replace DB: an existing DB is dropped (refused
     without --force; its sessions are ended) and the new one renamed.
Stop pggit-api first when DB is the one it uses (pggit-ops stop).
Exit: 0 restored, 2 refused or failed (DB is left as it was).
EOF
}

cmd_restore() {
  local file="" into="" force=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --into) [[ -n ${2:-} ]] || usage_error "--into needs a database name"
        into=$2; shift ;;
      --force) force=1 ;;
      -*) usage_error "restore: unknown option '$1'" ;;
      *) [[ -z $file ]] || usage_error "restore takes one FILE"
        file=$1 ;;
    esac
    shift
  done
  [[ -n $file ]] || usage_error "restore needs the FILE of a backup"
  load_connections || return 0
  local target=${into:-$APP_DB}
  [[ $target =~ ^[A-Za-z_][A-Za-z0-9_$-]{0,62}$ ]] || usage_error "invalid database name '$target'"
  section "restore $file into database $target"
  check_backup_files "$file" || return 0
  local exists=0
  if database_exists "$target"; then
    exists=1
    if [[ $force -ne 1 ]]; then
      report crit "target" "database $target exists: refusing to overwrite it without --force"
      return 0
    fi
    report info "target" "database $target exists and will be replaced (--force)"
  fi
  SCRATCH_DB="${target:0:40}_restore_$$"
  trap drop_scratch EXIT
  if provision_database "$SCRATCH_DB" && restore_into "$SCRATCH_DB" "$file" &&
    apply_settings "$SCRATCH_DB" "$MANIFEST" &&
    compare_with_manifest "$SCRATCH_DB" "$MANIFEST"; then
    swap_database "$SCRATCH_DB" "$target" "$exists" && SCRATCH_DB=""
  fi
  drop_scratch
  trap - EXIT
}

# Replaces TARGET by the restored NEW.
swap_database() {
  local new=$1 target=$2 exists=$3 out
  if [[ $exists -eq 1 ]]; then
    if ! drop_database "$target" || database_exists "$target"; then
      report crit "target" "cannot drop database $target"
      return 1
    fi
    action "dropped database $target (its sessions were ended)"
  fi
  if ! out=$(admin_sql postgres -v new="$new" -v db="$target" 2>&1 <<'SQL'
SELECT format('ALTER DATABASE %I RENAME TO %I', :'new', :'db') \gexec
SQL
  ); then
    report crit "target" "cannot rename $new to $target: $(head -n 1 <<<"$out")"
    return 1
  fi
  action "restored into database $target"
  report ok "restore" "database $target holds the backup; restart pggit-api if it uses it (pggit-ops restart)"
}
