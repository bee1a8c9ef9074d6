#!/usr/bin/env bash
# Issues the credential Pulumi reaches the cluster with, and prints it.
# Run over SSH on a server by `pulumi up` (components/k3s-cluster.ts).
#
# Usage: k3s-credential.sh <version>
# stdout: {"token": "<base64>", "caData": "<base64>"} (kept secret by Pulumi)
#
# k3s's admin kubeconfig is a client certificate that expires after 365 days.
# A ServiceAccount token from a `kubernetes.io/service-account-token` Secret
# does not expire; it lasts until the Secret is deleted. Bumping <version>
# issues a new token and deletes the older ones (rotation).
set -euo pipefail

version="${1:?credential version required}"
kubeconfig="${K3S_KUBECONFIG:-/etc/rancher/k3s/k3s.yaml}"
name="platform-deployer"
secret="${name}-token-v${version}"

log() { printf '%s k3s-credential: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
kubectl() { k3s kubectl --kubeconfig "$kubeconfig" "$@"; }

api_ready() { kubectl get --raw=/readyz >/dev/null 2>&1; }
ready=false
for attempt in $(seq 1 120); do
  if api_ready; then ready=true; break; fi
  if [ "$attempt" -lt 120 ]; then sleep 5; fi
done
if [ "$ready" != true ]; then
  log "the Kubernetes API did not become ready within 10 minutes; see: journalctl -u k3s"
  exit 1
fi

# Everything the program manages, CRDs and RBAC included: cluster-admin.
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${name}
  namespace: kube-system
  labels: { app.kubernetes.io/managed-by: pulumi }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ${name}
  labels: { app.kubernetes.io/managed-by: pulumi }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: ServiceAccount, name: ${name}, namespace: kube-system }]
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: ${secret}
  namespace: kube-system
  labels: { app.kubernetes.io/managed-by: pulumi, platform.io/credential: ${name}, platform.io/credential-version: "v${version}" }
  annotations: { kubernetes.io/service-account.name: ${name} }
EOF

# The token controller fills the Secret in a moment.
token=""
for attempt in $(seq 1 60); do
  token="$(kubectl -n kube-system get secret "$secret" -o 'jsonpath={.data.token}')"
  if [ -n "$token" ]; then break; fi
  if [ "$attempt" -lt 60 ]; then sleep 2; fi
done
if [ -z "$token" ]; then
  log "the token controller did not fill secret $secret"
  exit 1
fi
ca="$(kubectl -n kube-system get secret "$secret" -o 'jsonpath={.data.ca\.crt}')"

# Older tokens stop working now; Pulumi uses the new one from this run on.
kubectl -n kube-system delete secret -l "platform.io/credential=${name},platform.io/credential-version!=v${version}" >/dev/null
log "credential v${version} issued"
printf '{"token": "%s", "caData": "%s"}\n' "$token" "$ca"
