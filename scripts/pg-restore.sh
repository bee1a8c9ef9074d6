#!/usr/bin/env bash
# Restores one database from a backup written by pg-backup.sh. Run by hand
# (kubectl exec / a Job) and by pg-restore-drill.sh.
#
# Usage: pg-restore.sh [--force] <source-db> <target-db> [backup-id]
#   source-db  the database whose dump to restore: <backup>/<source-db>.dump
#   target-db  the database to restore into. Created when missing. An existing
#              one is used only when it has no table (outside pg_catalog and
#              information_schema); otherwise the restore is refused, unless
#              --force (first argument only) is given: then the dump is restored
#              into a new database <target>_restore_<epoch>, and only when that
#              succeeded are the two swapped by rename in one transaction (the
#              target's sessions are disconnected): the old database stays as
#              <target>_replaced_<epoch> until you drop it. An interruption at
#              any point leaves the old database in place.
#   backup-id  a directory name in BACKUP_DIR (YYYYMMDDTHHMMSSZ); default: the
#              newest backup that has a MANIFEST (i.e. is complete)
# Env:   BACKUP_DIR     (required) where pg-backup.sh writes
#        RESTORE_OWNER  (optional) role that owns the target database and every
#                       restored object (pg_restore --role), e.g. app_api when
#                       putting an app's database back; default: the connecting user
#        PGHOST, PGPORT, PGUSER, PGPASSWORD (PGCONNECT_TIMEOUT default 30): libpq settings of a superuser
#        PGDATABASE     (default postgres) database used to create/drop the target
# Before touching any database, the dump's sha256 is checked against the
# backup's MANIFEST and the archive's table of contents is read.
# Then: pg_restore --no-owner --no-acl --exit-on-error -d <target>.
# Stdout: one line saying what was restored. Stderr: one line per step.
# Exit:  0 restored; 1 failure (no such backup or dump, checksum mismatch, target
#        not empty without --force, pg_restore error; a database this run
#        created is dropped again); 2 usage error.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

usage() { bad_setting "${1:+$1; }usage: pg-restore.sh [--force] <source-db> <target-db> [backup-id]"; }

# Tables (ordinary or partitioned) outside the system schemas.
count_tables() {
  psql_on "$1" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
}

force=0
if [ "${1:-}" = "--force" ]; then
  force=1
  shift
fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
source_db=$1
target_db=$2
backup_id=${3:-}
[ -n "$source_db" ] || usage "source-db is empty"
[ -n "$target_db" ] || usage "target-db is empty"
[[ $source_db != */* && $source_db != .* ]] || usage "source-db '$source_db' is not a database name"
[ "$(printf '%s' "$target_db" | wc -c)" -le 63 ] || usage "target-db '$target_db' is longer than PostgreSQL's 63 bytes"
backup_root="${BACKUP_DIR:-}"
[ -n "$backup_root" ] || usage "BACKUP_DIR is required"
[ -d "$backup_root" ] || die "BACKUP_DIR '$backup_root' is not a directory (is the backup volume mounted?)"
backup_root="${backup_root%/}"
owner="${RESTORE_OWNER:-}"
maint_db="${PGDATABASE:-postgres}"

if [ -n "$backup_id" ]; then
  [[ $backup_id =~ $STAMP_RE ]] || usage "backup-id must be a backup directory name like 20250101T020000Z (got '$backup_id')"
  [ -d "$backup_root/$backup_id" ] || die "there is no backup $backup_id in $backup_root"
else
  shopt -s nullglob
  for path in "$backup_root"/*/MANIFEST; do
    name="${path%/MANIFEST}"
    name="${name##*/}"
    # The glob is sorted, and the names sort as their timestamps: the last wins.
    if [[ $name =~ $STAMP_RE ]]; then backup_id="$name"; fi
  done
  shopt -u nullglob
  [ -n "$backup_id" ] || die "there is no complete backup (a timestamp directory with a MANIFEST) in $backup_root"
fi
backup="$backup_root/$backup_id"
dump="$backup/$source_db.dump"
log "restoring database $source_db from backup $backup_id into $target_db"

[ -f "$backup/MANIFEST" ] || die "backup $backup_id has no MANIFEST: it is incomplete or damaged; pick another backup"
if [ ! -f "$dump" ]; then
  available="$(cd -- "$backup" && find . -maxdepth 1 -name '*.dump' -printf '%f\n' | sed 's/\.dump$//' | sort | tr '\n' ' ')"
  die "backup $backup_id has no dump of database '$source_db' (it has: ${available:-no database dumps})"
fi
expected=""
while read -r sum name; do
  if [ "$name" = "$source_db.dump" ]; then expected="$sum"; fi
done <"$backup/MANIFEST"
[ -n "$expected" ] || die "the MANIFEST of backup $backup_id lists no checksum for $source_db.dump"
actual="$(sha256sum <"$dump")"
actual="${actual%% *}"
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $dump: the MANIFEST says $expected, the file is $actual; the dump is damaged, restore from another backup"
fi
log "checksum of $source_db.dump matches the MANIFEST"
pg_restore --list -- "$dump" >/dev/null ||
  die "$dump is not an archive this pg_restore ($(pg_restore --version)) reads: damaged, or written by a newer pg_dump (zstd dumps need 16 or later)"

if [ -n "$owner" ]; then
  owner_exists="$(psql_on "$maint_db" -v role="$owner" <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'role';")" ||
    die "could not query the server (see the psql error above)"
  [ "$owner_exists" = 1 ] || die "RESTORE_OWNER '$owner' is not a role on this server"
fi
exists="$(psql_on "$maint_db" -v db="$target_db" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db';")" ||
  die "could not query the server (see the psql error above)"

created=""
finished=0
cleanup() {
  if [ -n "$created" ] && [ "$finished" = 0 ]; then
    log "dropping database $created, which this failed run created"
    psql_on "$maint_db" -v db="$created" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE);' ||
      log "could not drop database $created: drop it by hand"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

swap=0
if [ "$exists" = 1 ]; then
  tables="$(count_tables "$target_db")" || die "could not look into database $target_db"
  if [ "$tables" -gt 0 ] && [ "$force" = 0 ]; then
    die "target database $target_db already exists and has $tables tables; refusing to restore over it (pass --force as the first argument to restore beside it and swap)"
  fi
  if [ "$force" = 1 ]; then swap=1; fi
fi
epoch="$(date -u +%s)"
into="$target_db"
if [ "$swap" = 1 ]; then
  # Never into the live database: beside it, swapped in only when complete.
  into="${target_db:0:40}_restore_${epoch}"
  log "--force: restoring into $into, then swapping it with $target_db"
fi
if [ "$exists" = 0 ] || [ "$swap" = 1 ]; then
  psql_on "$maint_db" -v db="$into" <<<'CREATE DATABASE :"db";' || die "could not create database $into"
  created="$into"
  log "created database $into"
else
  log "restoring into the existing, empty database $target_db"
fi
restore_args=(--no-owner --no-acl --exit-on-error -w)
if [ -n "$owner" ]; then
  psql_on "$maint_db" -v db="$into" -v role="$owner" <<<'ALTER DATABASE :"db" OWNER TO :"role";' ||
    die "could not give database $into to $owner"
  restore_args+=("--role=$owner")
  log "database $into and the restored objects are owned by $owner"
fi

started="$(date +%s)"
pg_restore "${restore_args[@]}" -d "$(conn_db "$into")" -- "$dump" || die "pg_restore of $dump into $into failed"
tables="$(count_tables "$into")" || die "could not look into the restored database $into"
log "pg_restore done in $(($(date +%s) - started)) s"

if [ "$swap" = 1 ]; then
  replaced="${target_db:0:40}_replaced_${epoch}"
  # Both renames in one transaction: the target name always names a complete database.
  # Sessions that reconnect in between make the rename fail; try again a few times.
  swapped=0
  for attempt in 1 2 3 4 5; do
    if psql_on "$maint_db" -v db="$target_db" -v old="$replaced" -v new="$into" <<'SQL'
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid() \gset
BEGIN;
ALTER DATABASE :"db" RENAME TO :"old";
ALTER DATABASE :"new" RENAME TO :"db";
COMMIT;
SQL
    then swapped=1; break; fi
    log "swap attempt $attempt failed; retrying"
    sleep 1
  done
  [ "$swapped" = 1 ] || die "could not swap $into in for $target_db (sessions keep connecting? scale the app down); $target_db is unchanged"
  created=""
  log "swapped: $target_db is the restored database; the previous one is $replaced (drop it once you are satisfied)"
fi
finished=1
printf 'restored database %s from backup %s (%s) into %s: %s tables\n' "$source_db" "$backup_id" "$dump" "$target_db" "$tables"
