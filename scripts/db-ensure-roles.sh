#!/usr/bin/env bash
# Idempotent setup of the apps' roles and databases, and password rotation.
# Run as the PostgreSQL superuser by a Job on every release (image postgres:17).
#
# Usage: db-ensure-roles.sh
# Env:   ROLES_DIR  (required) directory (a mounted Kubernetes Secret) with one
#                   file per app role, named app_<slug> (slug: a-z, 0-9 and '-',
#                   at most 59 characters), holding that role's password (with
#                   or without a trailing newline or CRLF). Hidden entries (the
#                   Secret volume's ..data links) are ignored; any other entry is
#                   an error, reported before anything is changed.
#        SUPERUSER_PASSWORD_FILE  (optional) file with a new password for the
#                   connecting superuser (PGUSER); set last, after every app role,
#                   so rotating it cannot break this run
#        PGHOST, PGPORT, PGUSER, PGPASSWORD (PGCONNECT_TIMEOUT default 30): libpq settings of the superuser
#        PGDATABASE (default postgres) database the commands run in
# For each app_<slug>, in one session each (ON_ERROR_STOP):
#   CREATE ROLE "app_<slug>" LOGIN             when missing
#   ALTER ROLE "app_<slug>" LOGIN PASSWORD ... always, so a changed file rotates it
#   CREATE DATABASE "<slug>" OWNER "app_<slug>" when missing (an existing one
#                                               owned by another role is given to it)
#   REVOKE ALL ON DATABASE "<slug>" FROM PUBLIC
# Names and passwords reach SQL only as psql variables (-v name=value, or
# \getenv for passwords so they are not in any process's argv) quoted by psql
# (:'name' literal, :"name" identifier): the shell never builds SQL from them.
# Passwords are never printed; the sessions set log_statement = none and
# log_min_error_statement = panic so the server log does not record them.
# Needs psql 15 or later (\getenv).
# Stdout: one summary line. Stderr: one line per step.
# Exit:  0 done; 1 failure (the superuser password is then not rotated);
#        2 bad settings or ROLES_DIR contents (nothing changed).
set -euo pipefail
# shellcheck source=scripts/pg-common.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/pg-common.sh"

readonly ROLE_FILE_RE='^app_([a-z0-9-]{1,59})$'

# Runs the SQL script on stdin as the superuser, with the psql variables given
# as arguments; the password is taken from the environment (ROLE_PASSWORD).
# What the script \echo-es is logged.
run_sql() {
  psql_on "$maint_db" "$@" | while IFS= read -r line; do log "$line"; done
}

# A password file's content without its trailing newlines (and a CR before them).
read_password() {
  local content
  content="$(cat -- "$1")" || return 1
  printf '%s' "${content%$'\r'}"
}

roles_dir="${ROLES_DIR:-}"
su_file="${SUPERUSER_PASSWORD_FILE:-}"
maint_db="${PGDATABASE:-postgres}"
[ -n "$roles_dir" ] || bad_setting "ROLES_DIR is required"
[ -d "$roles_dir" ] || bad_setting "ROLES_DIR '$roles_dir' is not a directory (is the Secret mounted?)"
if [ -n "$su_file" ] && [ ! -f "$su_file" ]; then bad_setting "SUPERUSER_PASSWORD_FILE '$su_file' is not a file"; fi

# Check every file before changing anything.
slugs=()
shopt -s nullglob
for path in "$roles_dir"/*; do
  name="${path##*/}"
  if ! [[ $name =~ $ROLE_FILE_RE ]]; then
    bad_setting "unexpected entry '$name' in ROLES_DIR: files must be named app_<slug> (slug: a-z, 0-9, '-', 1-59 characters)"
  fi
  [ -f "$path" ] || bad_setting "ROLES_DIR entry '$name' is not a file"
  password="$(read_password "$path")" || bad_setting "cannot read the password file of $name"
  [ -n "$password" ] || bad_setting "the password file of $name is empty"
  slugs+=("${BASH_REMATCH[1]}")
done
shopt -u nullglob
if [ -n "$su_file" ]; then
  password="$(read_password "$su_file")" || bad_setting "cannot read SUPERUSER_PASSWORD_FILE"
  [ -n "$password" ] || bad_setting "SUPERUSER_PASSWORD_FILE is empty"
fi
password=""
log "${#slugs[@]} app roles in $roles_dir: ${slugs[*]:-(none)}"

for slug in "${slugs[@]}"; do
  role="app_$slug"
  ROLE_PASSWORD="$(read_password "$roles_dir/$role")" run_sql -v role="$role" -v db="$slug" <<'SQL' ||
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
-- Two releases at once wait for each other instead of racing to CREATE.
SELECT pg_advisory_lock(hashtext('db-ensure-roles')) IS NULL AS locked \gset
\getenv password ROLE_PASSWORD
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS create_role,
       NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS create_db \gset
\if :create_role
CREATE ROLE :"role" LOGIN;
\echo created role :role
\endif
-- terse: an error never quotes the statement (and so the password) back.
\set VERBOSITY terse
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
\set VERBOSITY default
\unset password
\echo set the password of role :role
\if :create_db
CREATE DATABASE :"db" OWNER :"role";
\echo created database :db owned by :role
\else
SELECT pg_get_userbyid(datdba) <> :'role' AS give_db FROM pg_database WHERE datname = :'db' \gset
\if :give_db
ALTER DATABASE :"db" OWNER TO :"role";
\echo database :db was owned by another role: now owned by :role
\endif
\endif
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
\echo revoked all on database :db from PUBLIC
SQL
    die "setting up role $role and database $slug failed (see the psql error above)"
done

if [ -n "$su_file" ]; then
  ROLE_PASSWORD="$(read_password "$su_file")" run_sql <<'SQL' ||
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
\getenv password ROLE_PASSWORD
\set VERBOSITY terse
ALTER ROLE CURRENT_USER WITH PASSWORD :'password';
\set VERBOSITY default
\unset password
SELECT current_user AS su \gset
\echo set the password of the superuser :su
SQL
    die "setting the superuser's password failed (see the psql error above)"
fi

echo "ensured ${#slugs[@]} app roles and databases${slugs[*]:+: ${slugs[*]}}${su_file:+; superuser password set}"
