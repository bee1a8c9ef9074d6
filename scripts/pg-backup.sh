#!/usr/bin/env bash
# Daily logical backup of the PostgreSQL server; run by the backup CronJob
# (image postgres:17) and by hand with `kubectl create job --from=cronjob/...`.
#
# Usage: pg-backup.sh
# Env:   BACKUP_DIR      (required) existing, writable directory on the backup volume
#        RETENTION_DAYS  (default 7) whole days a backup is kept (0 or more)
#        PGHOST, PGPORT, PGUSER, PGPASSWORD (PGCONNECT_TIMEOUT default 30): libpq settings of a superuser
#        PGDATABASE      (default postgres) database the list of databases is read from
# Stdout: the new backup's directory, as the last line. Stderr: one line per step.
# Exit:  0 backup written (and expired ones pruned); 1 failure; 2 bad settings.
#
# A backup is the directory $BACKUP_DIR/<YYYYMMDDTHHMMSSZ>/ (UTC start time):
#   globals.sql.gz  pg_dumpall --globals-only, gzipped: roles (with their password
#                   hashes: files are created mode 600) and tablespaces
#   <db>.dump       pg_dump -Fc (custom format) of every database that is not a
#                   template, accepts connections and is not `postgres` nor a
#                   restore drill's scratch database (drill_<db>_<epoch>);
#                   compressed with zstd level 1 by pg_dump 16 and later (read
#                   by pg_restore 16 and later), gzip by pg_dump 15
#   MANIFEST        written last: "<sha256>  <file>" per file (sha256sum -c MANIFEST)
# It is built in $BACKUP_DIR/.<timestamp>.partial and renamed into place only
# when every dump succeeded. On any failure the partial directory is removed,
# nothing else is touched, and the exit status is 1.
#
# Retention, applied only after the new backup is in place. Backups are the
# directories named YYYYMMDDTHHMMSSZ by a valid date that is not in the future
# (anything else in BACKUP_DIR is ignored; future names are reported):
#   - a backup whose timestamp is more than RETENTION_DAYS x 24 hours older than
#     the reference is removed; the reference is now, but at most a day after the
#     newest earlier complete backup (a clock run ahead prunes nothing extra),
#   - except the two newest complete backups (with a MANIFEST: the one just
#     written and the newest one before it), which are never removed: when the
#     CronJob stopped for longer than the retention, the first backup after the
#     gap keeps the last one from before it instead of leaving a single, never
#     yet drilled backup;
#   - .<timestamp>.partial directories more than 24 hours old (left by a killed
#     run) are removed; younger ones may belong to a run in progress.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"
umask 077

readonly KEEP_NEWEST=2

backup_root="${BACKUP_DIR:-}"
retention_days="${RETENTION_DAYS:-7}"
maint_db="${PGDATABASE:-postgres}"
[ -n "$backup_root" ] || bad_setting "BACKUP_DIR is required"
[[ $retention_days =~ ^[0-9]+$ ]] || bad_setting "RETENTION_DAYS must be a whole number of days (got '$retention_days')"
retention_days=$((10#$retention_days))
if [ ! -d "$backup_root" ] || [ ! -w "$backup_root" ]; then
  bad_setting "BACKUP_DIR '$backup_root' is not a writable directory (is the backup volume mounted?)"
fi
backup_root="${backup_root%/}"
shopt -s nullglob

partial=""
cleanup() {
  if [ -n "$partial" ] && [ -d "$partial" ]; then
    rm -rf -- "$partial"
    log "removed the incomplete $partial"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Claim a new timestamp: mkdir is atomic, so two runs in the same second
# (a manual Job next to the CronJob) never share a directory.
stamp=""
for attempt in 1 2 3 4 5; do
  candidate="$(date -u +%Y%m%dT%H%M%SZ)"
  if [ ! -e "$backup_root/$candidate" ] && mkdir -- "$backup_root/.$candidate.partial" 2>/dev/null; then
    stamp="$candidate"
    partial="$backup_root/.$candidate.partial"
    break
  fi
  if [ "$attempt" -lt 5 ]; then sleep 1; fi
done
[ -n "$stamp" ] || die "could not create a new backup directory in $backup_root (another backup running?)"
final="$backup_root/$stamp"
log "backup $stamp of ${PGHOST:-the local socket}:${PGPORT:-5432} as ${PGUSER:-$(id -un)} into $partial"

if ! db_list="$(psql_on "$maint_db" -c "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn AND datname <> 'postgres'
    AND datname !~ '^drill_.+_[0-9]{10}$' ORDER BY datname")"; then
  die "could not list the databases (see the psql error above)"
fi
databases=()
if [ -n "$db_list" ]; then mapfile -t databases <<<"$db_list"; fi
for db in "${databases[@]}"; do
  if [ -z "$db" ] || [[ $db == */* || $db == .* ]]; then
    die "database name '$db' cannot be used as a file name; rename the database"
  fi
done
log "databases to dump: ${databases[*]:-(none besides postgres)}"

# zstd level 1 (pg_dump 16+): pg_dump 17 ran 6.4x as fast as with its default
# gzip for a 15% smaller dump, this whole script 3.4x (`npm run bench:db` on
# PostgreSQL 17); before 16, gzip is pg_dump's only custom-format codec.
pg_dump_version="$(pg_dump --version)" || die "pg_dump is not available"
[[ $pg_dump_version =~ \)\ ([0-9]+) ]] || die "cannot read the major version from '$pg_dump_version'"
dump_compression=()
if [ "${BASH_REMATCH[1]}" -ge 16 ]; then dump_compression=(--compress=zstd:1); fi

files=(globals.sql.gz)
log "dumping roles and tablespaces -> globals.sql.gz"
pg_dumpall -w --globals-only | gzip -c >"$partial/globals.sql.gz" || die "pg_dumpall --globals-only failed"

for db in "${databases[@]}"; do
  log "dumping database $db -> $db.dump"
  pg_dump -w -Fc "${dump_compression[@]}" -d "$(conn_db "$db")" -f "$partial/$db.dump" || die "pg_dump of database '$db' failed"
  files+=("$db.dump")
  log "dumped database $db: $(stat -c %s "$partial/$db.dump") bytes"
done

(cd -- "$partial" && sha256sum -- "${files[@]}") >"$partial/MANIFEST" || die "could not write the MANIFEST"
sync -- "$partial"/* "$partial" || die "could not flush the backup to disk"
mv -T -- "$partial" "$final" || die "could not move $partial to $final"
partial=""
sync -- "$backup_root" || die "could not flush $backup_root to disk"
log "backup complete: $final (${#files[@]} files, $(du -sk -- "$final" | cut -f1) KiB)"

# Pruning: only now that the new backup is in place. Ages are measured from
# the backups' own timestamps: the reference is this run's clock, but never
# more than a day after the newest earlier complete backup, so a clock that
# jumped ahead cannot expire every backup at once.
now="$(date -u +%s)"
backup_list=()
future_backups=()
backup_stamps "$backup_root" "$now"
backups=("${backup_list[@]}")
complete=()
for name in "${backups[@]}"; do
  if [ -f "$backup_root/$name/MANIFEST" ]; then complete+=("$name"); fi
done
reference=$now
for name in "${complete[@]}"; do
  [ "$name" != "$stamp" ] || continue
  previous="$(stamp_epoch "$name")"
  if [ $((previous + 86400)) -lt "$reference" ]; then reference=$((previous + 86400)); fi
  break
done
cutoff=$((reference - retention_days * 86400))
# Never removed: the two newest complete backups.
keep=("${complete[@]:0:KEEP_NEWEST}")
pruned=0
for name in "${backups[@]}"; do
  [[ " ${keep[*]} " == *" $name "* ]] && continue
  epoch="$(stamp_epoch "$name")"
  if [ "$epoch" -lt "$cutoff" ]; then
    rm -rf -- "${backup_root:?}/$name"
    pruned=$((pruned + 1))
    log "removed expired backup $name ($(((reference - epoch) / 86400)) days older than the reference, retention $retention_days days)"
  fi
done
for path in "$backup_root"/.*.partial; do
  name="${path##*/}"
  inner="${name#.}"
  inner="${inner%.partial}"
  if [ ! -d "$path" ] || ! [[ $inner =~ $STAMP_RE ]]; then continue; fi
  if epoch="$(stamp_epoch "$inner")" && [ "$epoch" -lt $((now - 86400)) ]; then
    rm -rf -- "${backup_root:?}/$name"
    log "removed stale partial directory $name"
  fi
done
log "retention: $((${#backups[@]} - pruned)) backups kept, $pruned removed${future_backups[0]:+, ${#future_backups[@]} from the future left alone}"

printf '%s\n' "$final"
