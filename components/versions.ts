// Pinned versions of everything the cluster runs besides k3s itself (which is
// stack config). Bump them here, in one reviewed commit.
export const VERSIONS = {
    /** charts.hetzner.cloud/hcloud-cloud-controller-manager */
    hcloudCcmChart: "1.32.0",
    /** charts.hetzner.cloud/hcloud-csi */
    hcloudCsiChart: "2.21.2",
    /** charts.jetstack.io/cert-manager */
    certManagerChart: "v1.19.1",
    /** PostgreSQL 17, as in seed 001 (Debian-based: bash, pg_dump, pg_restore for the scripts). */
    postgres: "postgres:17.6-bookworm",
    /** PgBouncer 1.25, as maintained by CloudNativePG. */
    pgbouncer: "ghcr.io/cloudnative-pg/pgbouncer:1.25.0",
    /** Uploads backups to S3-compatible storage. */
    rclone: "rclone/rclone:1.71.1",
    systemUpgradeController: "rancher/system-upgrade-controller:v0.17.0",
    /** Runs the upgrade Jobs' cordon/drain steps: upstream's default-controller-env at v0.17.0. */
    systemUpgradeKubectl: "rancher/kubectl:v1.30.3",
    k3sUpgradeImage: "rancher/k3s-upgrade",
} as const;

export const HETZNER_CHART_REPO = "https://charts.hetzner.cloud";

/**
 * The official kubectl image (registry.k8s.io/kubectl, published with every
 * Kubernetes release since v1.28; distroless, entrypoint kubectl) of the
 * Kubernetes version a k3s release is built on: v1.34.6+k3s1 -> v1.34.6.
 * Same version as the cluster, so never outside kubectl's version skew.
 */
export function kubectlImage(k3sVersion: string): string {
    return `registry.k8s.io/kubectl:${k3sVersion.replace(/\+k3s\d+$/, "")}`;
}
