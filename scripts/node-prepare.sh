#!/usr/bin/env bash
# Prepares a Hetzner node for k3s; run once by cloud-init at first boot.
#
# Usage: node-prepare.sh <k3s-version> <amd64|arm64>
#
# Holds and receives no secret (user-data is readable from the metadata
# service): it brings up the private network interface, blocks pods from the
# metadata address, and installs the pinned k3s binary after checking it
# against the release's published checksum. k3s is not started here: its
# configuration (with the join token) arrives over SSH (k3s-apply-config.sh).
set -euo pipefail

version="${1:?k3s version required, e.g. v1.34.6+k3s1}"
arch="${2:?architecture required: amd64 or arm64}"
release_url="${K3S_RELEASE_URL:-https://github.com/k3s-io/k3s/releases/download}"
bin_dir="${K3S_BIN_DIR:-/usr/local/bin}"
state_dir="${PLATFORM_STATE_DIR:-/var/lib/platform}"

log() { printf '%s node-prepare: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

case "$arch" in
  amd64) asset="k3s" ;;
  arm64) asset="k3s-arm64" ;;
  *) log "unknown architecture '$arch'"; exit 2 ;;
esac

# The private NIC may be attached after boot; netplan (60-platform-private.yaml)
# configures it by DHCP whenever it appears.
netplan apply || log "netplan apply failed; the private interface may come up later"

# Pods must not read the metadata service (it serves user-data and the node's identity).
systemctl daemon-reload
systemctl enable --now platform-metadata-block.service

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The release tag's "+" must be URL-encoded.
base="${release_url}/${version//+/%2B}"
fetch() {
  local url="$1" out="$2"
  for attempt in 1 2 3 4 5; do
    if curl -sfL --max-time 300 "$url" -o "$out"; then return 0; fi
    log "download of $url failed (attempt $attempt)"
    sleep $((attempt * 10))
  done
  return 1
}
fetch "${base}/sha256sum-${arch}.txt" "$work/sha256sum.txt" || { log "could not download the k3s checksums"; exit 1; }
fetch "${base}/${asset}" "$work/k3s" || { log "could not download k3s $version"; exit 1; }

expected="$(awk -v f="$asset" '$2 == f { print $1 }' "$work/sha256sum.txt")"
if [ -z "$expected" ]; then
  log "no checksum for $asset in the release's sha256sum-${arch}.txt"
  exit 1
fi
actual="$(sha256sum "$work/k3s" | awk '{ print $1 }')"
if [ "$actual" != "$expected" ]; then
  log "checksum mismatch for k3s $version: expected $expected, got $actual"
  exit 1
fi

install -m 0755 "$work/k3s" "$bin_dir/k3s"
for tool in kubectl crictl ctr; do
  ln -sf k3s "$bin_dir/$tool"
done
mkdir -p "$state_dir"
printf '%s\n' "$version" > "$state_dir/node-prepared"
log "k3s $version installed (sha256 $actual)"
