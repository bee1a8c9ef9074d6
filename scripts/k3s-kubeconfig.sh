#!/usr/bin/env bash
# Prints the cluster's admin kubeconfig once the Kubernetes API is ready.
# Run over SSH on the first server by `pulumi up` (components/k3s-cluster.ts).
set -euo pipefail

kubeconfig="${K3S_KUBECONFIG:-/etc/rancher/k3s/k3s.yaml}"

# Up to 20 minutes: a fresh server installs k3s and initialises etcd first.
for attempt in $(seq 1 240); do
  if [ -s "$kubeconfig" ] && k3s kubectl --kubeconfig "$kubeconfig" get --raw=/readyz >/dev/null 2>&1; then
    cat "$kubeconfig"
    exit 0
  fi
  if [ "$attempt" -lt 240 ]; then sleep 5; fi
done
echo "k3s API did not become ready within 20 minutes; see: journalctl -u k3s, /var/log/cloud-init-output.log" >&2
exit 1
