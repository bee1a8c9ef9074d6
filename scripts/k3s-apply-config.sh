#!/usr/bin/env bash
# Applies a node's k3s configuration and (re)starts k3s when it changed.
# Run over SSH by `pulumi up` (components/k3s-cluster.ts), one server at a
# time, each returning only once its node is Ready (and, on servers, the API
# and etcd are healthy), so a rolling change never takes down two servers.
#
# Usage: k3s-apply-config.sh <server|agent> <node-name> <private-ip> [--cluster-init] [join-candidate ...]
# stdin: the node's config.yaml without `server`, `cluster-init` and
#        `flannel-iface`, which only the node can decide. Never printed.
#
# Joining: a node without local state joins the first candidate whose
# supervisor answers, so no single server is needed. `--cluster-init` (the
# one-time bootstrap of the first server) initialises etcd only if no
# candidate answers and the node has no etcd data: a replaced server never
# starts a second, empty cluster.
set -euo pipefail

role="${1:?role (server or agent) required}"
node="${2:?node name required}"
node_ip="${3:?node private IP required}"
shift 3
cluster_init=false
if [ "${1:-}" = "--cluster-init" ]; then cluster_init=true; shift; fi
candidates=("$@")

config="${K3S_CONFIG_FILE:-/etc/rancher/k3s/config.yaml}"
data_dir="${K3S_DATA_DIR:-/var/lib/rancher/k3s}"
state_dir="${PLATFORM_STATE_DIR:-/var/lib/platform}"
admin_kubeconfig="${K3S_KUBECONFIG:-/etc/rancher/k3s/k3s.yaml}"
k3s_bin="${K3S_BIN:-/usr/local/bin/k3s}"

log() { printf '%s k3s-apply-config %s: %s\n' "$(date -u +%FT%TZ)" "$node" "$*" >&2; }

case "$role" in
  server) unit=k3s ;;
  agent) unit=k3s-agent ;;
  *) log "unknown role '$role'"; exit 2 ;;
esac
if [ "$role" = agent ] && [ "$cluster_init" = true ]; then
  log "an agent cannot initialise the cluster"
  exit 2
fi

# Waits up to $1 polls of 5 s for "$@" to succeed.
wait_for() {
  local polls="$1"; shift
  for attempt in $(seq 1 "$polls"); do
    if "$@"; then return 0; fi
    if [ "$attempt" -lt "$polls" ]; then sleep 5; fi
  done
  return 1
}

# cloud-init downloads and checks k3s first (node-prepare.sh): up to 20 minutes.
# A node installed before node-prepare.sh existed has k3s already.
prepared() { [ -s "$state_dir/node-prepared" ] || [ -x "$k3s_bin" ]; }
if ! wait_for 240 prepared; then
  log "node preparation did not finish within 20 minutes; see /var/log/cloud-init-output.log"
  exit 1
fi

umask 077
mkdir -p "$(dirname "$config")"
new="$(mktemp "$(dirname "$config")/.config.yaml.XXXXXX")"
trap 'rm -f "$new"' EXIT
cat > "$new"
if [ ! -s "$new" ]; then
  log "no configuration on stdin"
  exit 2
fi

# flannel must use the private interface: the one that carries the node's private address.
private_iface() { ip -o -4 addr show | awk -v ip="$node_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }'; }
has_private_iface() { [ -n "$(private_iface)" ]; }
if ! wait_for 60 has_private_iface; then
  log "no interface carries the private address $node_ip; is the server attached to the network?"
  exit 1
fi
iface="$(private_iface)"

answering=""
find_answering() {
  local c
  for c in "${candidates[@]}"; do
    if curl -ksf --max-time 5 "https://${c}:6443/ping" >/dev/null; then answering="$c"; return 0; fi
  done
  return 1
}
initialised=false
# k3s treats a member as initialised when its WAL exists (pkg/etcd/etcd.go `IsInitialized`).
if [ "$role" = server ] && [ -d "$data_dir/server/db/etcd/member/wal" ]; then initialised=true; fi

join=""
init_line=false
if [ "$initialised" = true ]; then
  # An etcd member restarts from its own data; a join address is only a hint then.
  if [ ${#candidates[@]} -gt 0 ] && find_answering; then join="$answering"; fi
elif [ "$cluster_init" = true ]; then
  if [ ${#candidates[@]} -gt 0 ] && find_answering; then
    log "server $answering already answers: joining the existing cluster instead of initialising one"
    join="$answering"
  else
    init_line=true
  fi
else
  if [ ${#candidates[@]} -eq 0 ]; then
    log "no server to join was given"
    exit 2
  fi
  # Up to 30 minutes: the servers may still be booting.
  if ! wait_for 360 find_answering; then
    log "none of ${candidates[*]} answered within 30 minutes"
    exit 1
  fi
  join="$answering"
fi

{
  if [ "$init_line" = true ]; then echo "cluster-init: true"; fi
  if [ -n "$join" ]; then echo "server: https://${join}:6443"; fi
  echo "flannel-iface: ${iface}"
} >> "$new"

# Neither the join address nor cluster-init changes a node with etcd data (k3s
# pkg/cluster/bootstrap.go `shouldBootstrapLoad`): compare without them.
without_join() { grep -v -e '^server:' -e '^cluster-init:' "$1" 2>/dev/null || true; }
if [ -f "$config" ] && [ "$(without_join "$config")" = "$(without_join "$new")" ] && systemctl is-active --quiet "$unit"; then
  log "configuration unchanged; $unit keeps running"
else
  chmod 0600 "$new"
  mv -f "$new" "$config"
  systemctl enable "$unit" >/dev/null 2>&1
  log "configuration changed; restarting $unit"
  systemctl restart "$unit"
fi

# Ready means: the API answers and etcd is healthy (servers), and the node is Ready.
node_ready() {
  [ "$(k3s kubectl --kubeconfig "$admin_kubeconfig" get node "$node" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]
}
server_ready() {
  k3s kubectl --kubeconfig "$admin_kubeconfig" get --raw='/readyz' >/dev/null 2>&1 && node_ready
}
agent_ready() { curl -sf --max-time 5 http://127.0.0.1:10248/healthz >/dev/null; }
if ! wait_for 180 "${role}_ready"; then
  log "$unit did not become ready within 15 minutes; see: journalctl -u $unit"
  exit 1
fi
log "$unit ready"
