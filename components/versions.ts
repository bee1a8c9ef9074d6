// Pinned versions of everything the cluster runs besides k3s itself (which is
// stack config). Bump them here, in one reviewed commit.
export const VERSIONS = {
    /** charts.hetzner.cloud/hcloud-cloud-controller-manager */
    hcloudCcmChart: "1.32.0",
    /** charts.hetzner.cloud/hcloud-csi */
    hcloudCsiChart: "2.21.2",
    /** charts.jetstack.io/cert-manager */
    certManagerChart: "v1.19.1",
    systemUpgradeController: "rancher/system-upgrade-controller:v0.17.0",
    k3sUpgradeImage: "rancher/k3s-upgrade",
} as const;

export const HETZNER_CHART_REPO = "https://charts.hetzner.cloud";
