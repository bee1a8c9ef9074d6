#!/usr/bin/env bash
# Prints the cluster's admin kubeconfig once the Kubernetes API is ready.
# Run over SSH on the first server by `pulumi up` (components/k3s-cluster.ts).
set -euo pipefail

kubeconfig=/etc/rancher/k3s/k3s.yaml
deadline=$((SECONDS + 1200))

until [ -s "$kubeconfig" ] && k3s kubectl --kubeconfig "$kubeconfig" get --raw=/readyz >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "k3s API did not become ready within 20 minutes; see: journalctl -u k3s, /var/log/cloud-init-output.log" >&2
    exit 1
  fi
  sleep 5
done
cat "$kubeconfig"
