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

# YYYYMMDDTHHMMSSZ -> seconds since the epoch; fails on an impossible date.
stamp_epoch() {
  local s=$1
  date -u -d "${s:0:4}-${s:4:2}-${s:6:2} ${s:9:2}:${s:11:2}:${s:13:2}" +%s 2>/dev/null
}
