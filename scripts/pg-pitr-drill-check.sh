#!/usr/bin/env bash
# The object-store drill's check: run by the postgres-pitr-drill CronJob once
# the scratch Cluster it recovered from the object store (WAL archive and base
# backups) is Ready. It connects only to that scratch Cluster.
#
# Usage: pg-pitr-drill-check.sh
# Env:   PGHOST, PGPORT, PGUSER, PGPASSWORD: the scratch Cluster's superuser
#        DRILL_DATABASES    (required) space-separated databases that must have
#                           been recovered (the apps' databases)
#        DRILL_CHECK_QUERY  (optional) SQL run in each; it must return one value
#                           that is t/true or a positive number
#        CHECK_TIMEOUT      (default 600) seconds to wait for the login: the
#                           operator sets the superuser's password once the
#                           recovered instance runs
# Checks: the login works; the server is out of recovery (promoted at the end
# of the archived WAL); each database exists and passes check_restored_db
# (pg-common.sh: tables, rows of the largest, DRILL_CHECK_QUERY; a database
# without tables passes).
# Stdout: one line per database ("pitr-drill <db>: ok ..." or "pitr-drill <db>: FAILED ...").
# Exit:  0 every database passed; 1 a check failed; 2 bad settings.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

check_query="${DRILL_CHECK_QUERY:-}"
databases=()
read -r -a databases <<<"${DRILL_DATABASES:-}"
[ "${#databases[@]}" -gt 0 ] || bad_setting "DRILL_DATABASES is required: the databases the recovered Cluster must hold"
PGDATABASE=postgres bash "$(dirname "$0")/db-login-check.sh" || die "cannot log in to the recovered Cluster"

in_recovery="$(psql_on postgres -c "SELECT pg_is_in_recovery()")" || die "could not ask the recovered server whether it is in recovery"
[ "$in_recovery" = "f" ] || die "the recovered server is still in recovery: it did not reach the end of the archived WAL"
recovered_at="$(psql_on postgres -c "SELECT timeline_id || ' ' || to_char(checkpoint_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM pg_control_checkpoint()")" ||
  die "could not read the recovered server's checkpoint"
log "recovered server promoted; timeline and last checkpoint: $recovered_at"

failed=()
for db in "${databases[@]}"; do
  if ! exists="$(psql_on postgres -v db="$db" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db';")"; then
    echo "pitr-drill $db: FAILED listing the databases (see the psql error above)"
    failed+=("$db")
  elif [ "$exists" != "1" ]; then
    echo "pitr-drill $db: FAILED: not in the recovered Cluster"
    failed+=("$db")
  elif checks="$(check_restored_db "$db" "$check_query")"; then
    echo "pitr-drill $db: ok timeline=${recovered_at%% *} $checks"
  else
    echo "pitr-drill $db: $checks"
    failed+=("$db")
  fi
done
[ "${#failed[@]}" -eq 0 ] || die "object-store drill failed for: ${failed[*]}"
log "object-store drill passed for: ${databases[*]}"
