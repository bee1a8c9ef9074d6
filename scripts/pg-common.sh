# shellcheck shell=bash
# Helpers shared by pg-backup.sh, pg-restore.sh, pg-restore-drill.sh,
# db-grants.sh and db-login-check.sh; not a script to run. Each of them sources it from its own
# directory, right after `set -euo pipefail`, so it must be deployed next to
# them (a file of the db-scripts ConfigMap mounted at /scripts):
#   # shellcheck source=scripts/pg-common.sh
#   . "$(dirname "$0")/pg-common.sh"
# Sourcing it only defines the functions and readonly variables below and
# exports the PGCONNECT_TIMEOUT default; it runs nothing else.

# A database that does not answer fails the run instead of hanging it.
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-30}"

# The calling script's name without .sh (e.g. pg-backup), for the log prefix.
SCRIPT_NAME="${0##*/}"
readonly SCRIPT_NAME="${SCRIPT_NAME%.sh}"

# A backup's directory name: its UTC start time, YYYYMMDDTHHMMSSZ.
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly STAMP_RE='^[0-9]{8}T[0-9]{6}Z$'

# One line on stderr: "<UTC time> <script>: <message>".
log() { printf '%s %s: %s\n' "$(date -u +%FT%TZ)" "$SCRIPT_NAME" "$*" >&2; }
# Failure: exit status 1.
die() { log "FAILED: $*"; exit 1; }
# Bad settings or usage: exit status 2.
bad_setting() { log "$*"; exit 2; }

# libpq connection string naming one database, quoted: a name containing '='
# or starting with postgresql:// must not be read as connection settings.
conn_db() {
  local v=${1//\\/\\\\}
  v=${v//\'/\\\'}
  printf "dbname='%s'" "$v"
}

# psql on database $1, unaligned and without headers, stopping at the first
# error; SQL on stdin can use the variables given as further -v arguments
# (:'name' literal, :"name" identifier).
psql_on() {
  local db=$1
  shift
  psql -X -w -q -A -t -v ON_ERROR_STOP=1 -d "$(conn_db "$db")" "$@"
}

# True when $1 is t/true or a positive number.
is_pass_value() {
  local v="${1,,}"
  case "$v" in
    t | true) return 0 ;;
  esac
  [[ $v =~ ^\+?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?$ ]] || return 1
  awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }'
}

# Checks a restored or recovered database $1: counts its tables in schema
# public and the rows of the largest (a database without tables passes: an
# app may not have migrated yet), then runs $2 (DRILL_CHECK_QUERY) when not empty,
# which must return a single t/true or positive number. Prints
# "tables=N largest=T rows=R[ check=V]", or "FAILED: <why>" and returns 1.
check_restored_db() {
  local db=$1 query=$2 tables largest="-" rows=0 value
  if ! tables="$(psql_on "$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"; then
    echo "FAILED counting the tables of $db (see the psql error above)"
    return 1
  fi
  if [ "$tables" -gt 0 ]; then
    if ! largest="$(psql_on "$db" -c "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public'
        ORDER BY pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass) DESC, tablename LIMIT 1")" ||
      ! rows="$(psql_on "$db" -v t="$largest" <<<'SELECT count(*) FROM :t;')"; then
      echo "FAILED counting the rows of its largest table (see the psql error above)"
      return 1
    fi
  fi
  if [ -n "$query" ]; then
    log "$db: running DRILL_CHECK_QUERY"
    if ! value="$(psql_on "$db" <<<"$query")"; then
      echo "FAILED: DRILL_CHECK_QUERY failed (see the psql error above)"
      return 1
    fi
    if [[ $value == *$'\n'* || $value == *"|"* ]] || ! is_pass_value "$value"; then
      echo "FAILED: DRILL_CHECK_QUERY returned '${value//$'\n'/\\n}', not a single t/true or positive number"
      return 1
    fi
  fi
  echo "tables=$tables largest=$largest rows=$rows${query:+ check=$value}"
}

# YYYYMMDDTHHMMSSZ -> seconds since the epoch; fails on an impossible date.
stamp_epoch() {
  local s=$1
  date -u -d "${s:0:4}-${s:4:2}-${s:6:2} ${s:9:2}:${s:11:2}:${s:13:2}" +%s 2>/dev/null
}

# Seconds a backup's name may be ahead of this machine's clock (clocks drift a little).
readonly FUTURE_TOLERANCE=300

# Sets backup_list to the backups in directory $1 that count, newest first:
# directories named by a valid UTC timestamp no later than $2 (epoch seconds)
# + FUTURE_TOLERANCE; and future_backups to those named later than that. A name
# in the future or with an impossible date is reported on stderr and never
# counted: it must not pass for the newest backup.
# shellcheck disable=SC2034 # backup_list and future_backups are read by the scripts that source this file
backup_stamps() {
  local root=$1 now=$2 path name epoch
  local -a found=()
  backup_list=()
  future_backups=()
  for path in "$root"/*; do
    name="${path##*/}"
    if [ ! -d "$path" ] || ! [[ $name =~ $STAMP_RE ]]; then continue; fi
    if ! epoch="$(stamp_epoch "$name")"; then
      log "ignoring $name: not a valid date"
      continue
    fi
    if [ "$epoch" -gt $((now + FUTURE_TOLERANCE)) ]; then
      log "ignoring $name: $(((epoch - now) / 3600)) hours in the future (is a clock wrong?)"
      future_backups+=("$name")
      continue
    fi
    found+=("$name")
  done
  # The names sort as their timestamps.
  if [ ${#found[@]} -gt 0 ]; then mapfile -t backup_list < <(printf '%s\n' "${found[@]}" | sort -r); fi
}
