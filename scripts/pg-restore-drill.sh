#!/usr/bin/env bash
# Scheduled proof that the backups restore; run by the restore-drill CronJob
# (image postgres:17) next to pg-backup.sh and pg-restore.sh.
#
# Usage: pg-restore-drill.sh
# Env:   BACKUP_DIR           (required) where pg-backup.sh writes
#        DRILL_DATABASES      (optional) space-separated databases to drill;
#                             default: every <db>.dump in the newest backup
#        DRILL_CHECK_QUERY    (optional) SQL run in each scratch database; it must
#                             return one value that is t/true or a positive number
#                             (set DRILL_DATABASES too when it fits one database only)
#        DRILL_MAX_AGE_HOURS  (default 48) the newest backup must be younger, so a
#                             stopped backup CronJob is noticed
#        PGHOST, PGPORT, PGUSER, PGPASSWORD (PGCONNECT_TIMEOUT default 30): libpq settings of a superuser
#        PGDATABASE           (default postgres) database used to drop scratch databases
# Steps: take the newest backup (directory YYYYMMDDTHHMMSSZ) in BACKUP_DIR; check
# its age and every checksum in its MANIFEST; then for each database restore
# the dump with pg-restore.sh into a scratch database drill_<db>_<epoch>, check
# it (check_restored_db in pg-common.sh: tables, rows of the largest,
# DRILL_CHECK_QUERY), and drop the scratch database (also on failure
# or interruption: trap). Scratch databases more than a day old (left by a
# killed run) are dropped first. A failing database does not stop the others.
# Stdout: one summary line per database ("drill <db>: ok ..." or "drill <db>: FAILED ...").
# Stderr: one line per step.
# Exit:  0 every database passed; 1 no backup, newest backup too old or
#        incomplete, or any check failed; 2 bad settings.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

readonly SCRATCH_RE='^drill_.+_([0-9]{10})$'

drop_db() {
  psql_on "$maint_db" -v db="$1" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE);'
}

backup_root="${BACKUP_DIR:-}"
max_age_hours="${DRILL_MAX_AGE_HOURS:-48}"
check_query="${DRILL_CHECK_QUERY:-}"
maint_db="${PGDATABASE:-postgres}"
here="$(dirname "$0")"
[ -n "$backup_root" ] || bad_setting "BACKUP_DIR is required"
if ! [[ $max_age_hours =~ ^[0-9]+$ ]] || [ $((10#$max_age_hours)) -eq 0 ]; then
  bad_setting "DRILL_MAX_AGE_HOURS must be a whole number of hours above 0 (got '$max_age_hours')"
fi
max_age_hours=$((10#$max_age_hours))
[ -d "$backup_root" ] || die "BACKUP_DIR '$backup_root' is not a directory (is the backup volume mounted?)"
[ -f "$here/pg-restore.sh" ] || die "pg-restore.sh is not next to this script in $here"
backup_root="${backup_root%/}"
shopt -s nullglob

# Scratch databases still to drop: after each database, and by the trap
# whatever happens. Fails when one could not be dropped.
scratch=()
cleanup() {
  local db ok=0
  for db in "${scratch[@]}"; do
    if drop_db "$db"; then
      log "dropped scratch database $db"
    else
      log "could not drop scratch database $db: drop it by hand"
      ok=1
    fi
  done
  scratch=()
  return "$ok"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The newest backup, complete or not: a damaged newest backup must fail the drill.
# A backup named in the future would hide a stopped CronJob: it fails the drill.
now="$(date -u +%s)"
backup_list=()
future_backups=()
backup_stamps "$backup_root" "$now"
if [ ${#future_backups[@]} -gt 0 ]; then
  die "backup ${future_backups[0]} is named in the future: is a clock wrong? (move it aside; it is never counted as the newest)"
fi
newest="${backup_list[0]:-}"
[ -n "$newest" ] || die "there is no backup in $backup_root: has the backup CronJob ever succeeded?"
backup="$backup_root/$newest"
backup_epoch="$(stamp_epoch "$newest")"
age_hours=$(((now - backup_epoch) / 3600))
if [ $((now - backup_epoch)) -gt $((max_age_hours * 3600)) ]; then
  die "the newest backup $newest is $age_hours hours old (limit DRILL_MAX_AGE_HOURS=$max_age_hours): is the backup CronJob running?"
fi
log "newest backup: $newest ($age_hours hours old)"
[ -f "$backup/MANIFEST" ] || die "the newest backup $newest has no MANIFEST: it is incomplete or damaged"
(cd -- "$backup" && sha256sum --check --strict --quiet MANIFEST) >&2 ||
  die "checksums of backup $newest do not match its MANIFEST"
gzip -t -- "$backup/globals.sql.gz" || die "globals.sql.gz of backup $newest is not a valid gzip file"
log "every checksum in the MANIFEST of $newest matches"

databases=()
if [ -n "${DRILL_DATABASES:-}" ]; then
  read -r -a databases <<<"$DRILL_DATABASES"
else
  for path in "$backup"/*.dump; do
    name="${path##*/}"
    databases+=("${name%.dump}")
  done
fi
[ "${#databases[@]}" -gt 0 ] || die "backup $newest holds no database dump to drill"

# Scratch databases of killed runs (more than a day old) would fill the disk.
if ! leftovers="$(psql_on "$maint_db" -c "SELECT datname FROM pg_database WHERE datname ~ '^drill_.+_[0-9]{10}$'")"; then
  die "could not list the databases (see the psql error above)"
fi
if [ -n "$leftovers" ]; then
  while IFS= read -r db; do
    if [[ $db =~ $SCRATCH_RE ]] && [ "${BASH_REMATCH[1]}" -lt $((now - 86400)) ]; then
      drop_db "$db" || die "could not drop the leftover scratch database $db"
      log "dropped leftover scratch database $db"
    fi
  done <<<"$leftovers"
fi

# Drills one database into a scratch database (dropped by the caller); prints
# its summary line. Every step is checked by hand: set -e does not apply inside
# a function called from `if`.
drill_one() {
  local db=$1 started target checks
  started="$(date +%s)"
  # drill_<db>_<epoch> within PostgreSQL's 63 bytes.
  target="drill_${db:0:46}_$(date -u +%s)"
  scratch+=("$target")
  if ! bash "$here/pg-restore.sh" "$db" "$target" "$newest" >&2; then
    echo "drill $db: FAILED restoring backup $newest"
    return 1
  fi
  if ! checks="$(check_restored_db "$target" "$check_query")"; then
    echo "drill $db: $checks"
    return 1
  fi
  echo "drill $db: ok backup=$newest age_hours=$age_hours $checks seconds=$(($(date +%s) - started))"
}

failed=()
for db in "${databases[@]}"; do
  ok=1
  if [ ! -f "$backup/$db.dump" ]; then
    echo "drill $db: FAILED: backup $newest has no $db.dump"
    ok=0
  else
    log "drilling database $db"
    drill_one "$db" || ok=0
    if ! cleanup; then
      echo "drill $db: FAILED dropping its scratch database"
      ok=0
    fi
  fi
  if [ "$ok" = 0 ]; then failed+=("$db"); fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  die "restore drill of backup $newest failed for: ${failed[*]}"
fi
log "restore drill of backup $newest passed for: ${databases[*]}"
