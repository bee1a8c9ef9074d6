#!/usr/bin/env bash
# Runs the restore drill against a throwaway PostgreSQL of its own, never the
# production server: initialises a server in a temporary directory (the
# pod's ephemeral volume), reachable only through a Unix socket, runs
# pg-restore-drill.sh against it, and removes it whatever happens.
#
# Usage: pg-drill-server.sh
# Env:   BACKUP_DIR and the DRILL_* settings of pg-restore-drill.sh
#        DRILL_WORK_DIR  (default $TMPDIR or /tmp) where the throwaway server lives
# Needs the PostgreSQL server binaries (initdb, pg_ctl) of the backups' major or later;
# runs as a non-root user (PostgreSQL refuses root).
# Exit:  pg-restore-drill.sh's status; 1 if the throwaway server cannot start.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

here="$(dirname "$0")"
bindir="$(pg_config --bindir 2>/dev/null || true)"
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  bindir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
fi
[ -x "$bindir/initdb" ] || die "initdb not found (pg_config --bindir, PATH): the drill needs the PostgreSQL server binaries"

# Whatever the environment says, nothing here reaches another server (postgres
# itself reads PGPORT for its own port).
unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGPASSFILE PGSERVICE PGDATABASE PGSSLMODE
readonly port=5432

work="$(mktemp -d "${DRILL_WORK_DIR:-${TMPDIR:-/tmp}}/drill-server.XXXXXX")"
data="$work/data"
started=false
# shellcheck disable=SC2317 # run by the EXIT trap
stop_server() {
  if [ "$started" = true ]; then
    "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || log "could not stop the throwaway server"
  fi
  rm -rf "$work"
}
trap stop_server EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# No network listener and no password: only this pod's processes, through the socket.
"$bindir/initdb" -D "$data" -U drill --auth=trust --no-sync >"$work/initdb.log" 2>&1 \
  || die "initdb of the throwaway server failed: $(tail -n 3 "$work/initdb.log")"
"$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w -t 60 \
  -o "-p $port -c listen_addresses='' -c unix_socket_directories='$work' -c fsync=off -c full_page_writes=off" start >/dev/null \
  || die "the throwaway server did not start: $(tail -n 3 "$work/server.log")"
started=true
log "throwaway server up in $work (socket only)"

PGHOST="$work" PGPORT="$port" PGUSER=drill PGDATABASE=postgres bash "$here/pg-restore-drill.sh" && status=0 || status=$?
exit "$status"
