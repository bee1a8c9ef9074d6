#!/usr/bin/env bash
# Drops traffic from pods to the cloud metadata address on this node.
#
# Usage: node-metadata-block.sh <pod-cidr>
#
# Hetzner serves user-data and the server's identity at 169.254.169.254
# without authentication. Pod traffic is routed through the host, so a rule
# in the raw table's PREROUTING chain (which the node's own processes never
# pass, and which k3s, flannel and kube-router leave alone) drops it before
# any other rule could accept it. Host-network pods use the node's own
# address and are not covered. Idempotent: run at every boot by
# platform-metadata-block.service.
set -euo pipefail

pod_cidr="${1:?pod CIDR required, e.g. 10.42.0.0/16}"
metadata="169.254.169.254/32"
rule=(PREROUTING -s "$pod_cidr" -d "$metadata" -j DROP)

if iptables -t raw -C "${rule[@]}" 2>/dev/null; then
  echo "metadata block already in place for $pod_cidr"
else
  iptables -t raw -I "${rule[@]}"
  echo "metadata block added for $pod_cidr"
fi
