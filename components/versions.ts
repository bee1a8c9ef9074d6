// Pinned versions of everything the cluster runs besides k3s itself (which is
// stack config). Bump them here, in one reviewed commit.
export const VERSIONS = {
    /** charts.hetzner.cloud/hcloud-cloud-controller-manager */
    hcloudCcmChart: "1.32.0",
    /** charts.hetzner.cloud/hcloud-csi */
    hcloudCsiChart: "2.21.2",
    /** charts.jetstack.io/cert-manager */
    certManagerChart: "v1.19.1",
    /** cloudnative-pg/charts cloudnative-pg-v0.29.0: the CloudNativePG operator 1.30.0 (Chart.yaml appVersion). */
    cnpgChart: "0.29.0",
    /**
     * cloudnative-pg/charts plugin-barman-cloud-v0.7.0: plugin-barman-cloud v0.13.0 (Chart.yaml
     * appVersion; the plugin supports CloudNativePG 1.26 and later). WAL archiving and base backups.
     */
    barmanCloudChart: "0.7.0",
    /**
     * PgBouncer of the Pooler: 1.25.2 fixes four CVEs and the server reconnects 1.25.0 broke
     * (pgbouncer NEWS 1.25.1/1.25.2); the operator's default is 1.25.1 (pkg/versions/versions.go).
     * cloudnative-pg/pgbouncer-containers docker-bake.hcl: pgBouncerVersion 1.25.2-1.pgdg13+1, tag "1.25.2".
     */
    pgbouncer: "ghcr.io/cloudnative-pg/pgbouncer:1.25.2",
    /** Uploads backups to S3-compatible storage. */
    rclone: "rclone/rclone:1.71.1",
    systemUpgradeController: "rancher/system-upgrade-controller:v0.17.0",
    /** Runs the upgrade Jobs' cordon/drain steps: upstream's default-controller-env at v0.17.0. */
    systemUpgradeKubectl: "rancher/kubectl:v1.30.3",
    k3sUpgradeImage: "rancher/k3s-upgrade",
} as const;

export const HETZNER_CHART_REPO = "https://charts.hetzner.cloud";
export const CNPG_CHART_REPO = "https://cloudnative-pg.github.io/charts";

/**
 * CloudNativePG's PostgreSQL images by major, pinned by digest, from the
 * project's published catalog (cloudnative-pg/postgres-containers,
 * Debian/ClusterImageCatalog-bookworm.yaml, images.cnpg.io/date 20260817).
 * Debian-based: bash, pg_dump and pg_restore for our scripts too.
 */
export const POSTGRES_IMAGES = {
    15: "ghcr.io/cloudnative-pg/postgresql:15.19-202608170814-system-bookworm@sha256:08eb167b35d7b67e4cf40385262a954c0412ec981ec55b9a5b3a8b9ec2f95053",
    16: "ghcr.io/cloudnative-pg/postgresql:16.15-202608170814-system-bookworm@sha256:1625a452268aa8cb5149ec5a7428484e0a0402b8319598ec3d74ec212d21dbf2",
    17: "ghcr.io/cloudnative-pg/postgresql:17.11-202608170816-system-bookworm@sha256:d24d5a390d90b20a43ef7036981f5e6c6f78bbd3198a1e2cd99443fbbd14a9b8",
    18: "ghcr.io/cloudnative-pg/postgresql:18.6-202608170814-system-bookworm@sha256:83229f82cf85a38c3b13d9edbc0667763006514b499510540d704a21c9aa725a",
} as const;
export type PostgresMajor = keyof typeof POSTGRES_IMAGES;

/**
 * Runs the app-volume snapshot and restore scripts (scripts/volume-*.py): the
 * "system" image adds Barman Cloud, so it carries Debian bookworm's python3
 * 3.11 with its sqlite3 module (cloudnative-pg/postgres-containers Dockerfile
 * at c3fe4092, its last change before this build: target system installs
 * python3-pip; docker-bake.hcl builds it on debian:bookworm-slim), the
 * interpreter the tests run the scripts with; pinned by digest, and already
 * pulled wherever the database runs.
 */
export const VOLUME_TOOLS_IMAGE = POSTGRES_IMAGES[17];

/**
 * The official kubectl image (registry.k8s.io/kubectl, published with every
 * Kubernetes release since v1.28; distroless, entrypoint kubectl) of the
 * Kubernetes version a k3s release is built on: v1.34.6+k3s1 -> v1.34.6.
 * Same version as the cluster, so never outside kubectl's version skew.
 */
export function kubectlImage(k3sVersion: string): string {
    return `registry.k8s.io/kubectl:${k3sVersion.replace(/\+k3s\d+$/, "")}`;
}
