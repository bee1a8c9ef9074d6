#!/usr/bin/env bash
# Applies what CloudNativePG does not declare: each app's database is closed to
# everyone but its owner role, and the app's login roles act as that owner.
# Run as the PostgreSQL superuser by a Job after the roles and databases exist,
# and again after a restore (docs/database.md).
#
# Usage: db-grants.sh <app> [<app> ...]
# Env:   PGHOST, PGPORT, PGUSER, PGPASSWORD (PGCONNECT_TIMEOUT default 30): libpq settings of the superuser
#        PGDATABASE (default postgres) database the commands run in
# For each app (database <app>, owner role app_<slug>, login roles app_<slug>_1 and _2):
#   REVOKE CONNECT, TEMPORARY ON DATABASE "<app>" FROM PUBLIC   other apps cannot reach its data
#   GRANT CONNECT, TEMPORARY ON DATABASE "<app>" TO "app_<slug>" its login roles inherit it
#   ALTER ROLE "app_<slug>_<n>" SET role = 'app_<slug>'  tables a migration creates belong to
#                                                        the owner, whichever login role ran it
# Idempotent. Names reach SQL only as psql variables quoted by psql.
# Exit:  0 done; 1 failure; 2 bad usage.
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

[ $# -gt 0 ] || bad_setting "usage: db-grants.sh <app> [<app> ...]"
export PGDATABASE="${PGDATABASE:-postgres}"

for app in "$@"; do
  [[ "$app" =~ ^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$ ]] || bad_setting "not an app name: '$app'"
done

for app in "$@"; do
  owner="app_${app//-/_}"
  psql -X -w -q -v ON_ERROR_STOP=1 -v db="$app" -v owner="$owner" -v login1="${owner}_1" -v login2="${owner}_2" <<'SQL' || die "grants of $app"
REVOKE CONNECT, TEMPORARY ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"owner";
ALTER ROLE :"login1" SET role = :'owner';
ALTER ROLE :"login2" SET role = :'owner';
SQL
  log "$app: CONNECT only for $owner; ${owner}_1 and ${owner}_2 act as $owner"
done
echo "grants applied to $# database(s)"
