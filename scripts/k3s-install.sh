#!/usr/bin/env bash
# Installs the pinned k3s release on a Hetzner node; run once by cloud-init.
#
# Usage: k3s-install.sh <server|agent> <k3s-version> <node-private-ip> [join-ip]
#
# /etc/rancher/k3s/config.yaml is already written by cloud-init. This script
# adds the one setting only the node itself can know (the name of its private
# network interface, for flannel), waits for the server it joins instead of
# failing when that server is still booting, and then installs k3s.
set -euo pipefail

role="${1:?role (server or agent) required}"
version="${2:?k3s version required}"
node_ip="${3:?node private IP required}"
join_ip="${4:-}"
config="${K3S_CONFIG_FILE:-/etc/rancher/k3s/config.yaml}"

log() { printf '%s k3s-install: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

case "$role" in
  server|agent) ;;
  *) log "unknown role '$role'"; exit 2 ;;
esac

# The private interface appears a little after boot; wait up to 5 minutes.
iface=""
for _ in $(seq 1 60); do
  iface="$(ip -o -4 addr show | awk -v ip="$node_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')"
  [ -n "$iface" ] && break
  sleep 5
done
if [ -z "$iface" ]; then
  log "no interface carries the private address $node_ip; is the server attached to the network?"
  exit 1
fi
if ! grep -q '^flannel-iface:' "$config"; then
  printf 'flannel-iface: %s\n' "$iface" >> "$config"
fi
log "private interface: $iface"

# Joiners wait for the first server's supervisor to answer (up to 30 minutes).
if [ -n "$join_ip" ]; then
  for attempt in $(seq 1 180); do
    if curl -ksf --max-time 5 "https://${join_ip}:6443/ping" >/dev/null; then
      log "server ${join_ip} is up"
      break
    fi
    if [ "$attempt" -eq 180 ]; then
      log "server ${join_ip} did not answer within 30 minutes"
      exit 1
    fi
    sleep 10
  done
fi

installer="$(mktemp)"
trap 'rm -f "$installer"' EXIT
for attempt in 1 2 3 4 5; do
  if curl -sfL --max-time 60 https://get.k3s.io -o "$installer"; then
    break
  fi
  if [ "$attempt" -eq 5 ]; then
    log "could not download the k3s installer"
    exit 1
  fi
  sleep $((attempt * 10))
done

INSTALL_K3S_VERSION="$version" INSTALL_K3S_EXEC="$role" sh "$installer"
log "k3s $version installed as $role"
