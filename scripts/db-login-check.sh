#!/usr/bin/env bash
# Waits until a login works: the app's new credentials, through PgBouncer,
# before the app's Secret is switched to them (password rotation), so no pod
# ever starts with a password the database does not accept yet.
#
# Usage: db-login-check.sh
# Env:   PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE: the login to check
#        CHECK_TIMEOUT  seconds to keep trying (default 600)
# Exit:  0 the login works; 1 it still fails after CHECK_TIMEOUT.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

timeout="${CHECK_TIMEOUT:-600}"
[[ "$timeout" =~ ^[0-9]+$ ]] || bad_setting "CHECK_TIMEOUT must be seconds, got '$timeout'"
export PGCONNECT_TIMEOUT=5
deadline=$(( $(date +%s) + timeout ))
attempt=0
while :; do
  attempt=$((attempt + 1))
  if psql -X -w -q -A -t -c 'SELECT 1' >/dev/null 2>"${TMPDIR:-/tmp}/login-check.err"; then
    log "login of ${PGUSER:-?} to ${PGDATABASE:-?} works (attempt $attempt)"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    die "login of ${PGUSER:-?} to ${PGDATABASE:-?} still fails after ${timeout}s: $(tail -n 1 "${TMPDIR:-/tmp}/login-check.err")"
  fi
  sleep 2
done
