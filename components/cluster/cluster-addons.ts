// What a Hetzner k3s cluster needs in-cluster before apps: the Hetzner cloud
// controller manager and CSI driver (their API token as a Secret created here,
// never in user-data), a volume class that keeps data, and the
// system-upgrade-controller with Plans pinned to the configured k3s version
// (components/cluster/upgrade-controller.ts).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { CLUSTER_CIDR } from "./k3s-render";
import { UpgradeController } from "./upgrade-controller";
import { HETZNER_CHART_REPO, kubectlImage, VERSIONS } from "../versions";

export interface ClusterAddonsArgs {
    readonly hcloudToken: pulumi.Input<string>;
    readonly networkId: pulumi.Input<number>;
    readonly location: string;
    readonly k3sVersion: string;
    /** Labels the CSI driver puts on every volume it creates, so retained ones can be found after a destroy. */
    readonly volumeLabels: Readonly<Record<string, string>>;
    readonly provider: k8s.Provider;
}

/** StorageClass whose volumes outlive their claims: for databases and anything stored. */
export const RETAIN_STORAGE_CLASS = "hcloud-volumes-retain";

/**
 * Values for the Hetzner CCM chart: node addresses from the private network.
 * No routes: flannel's VXLAN carries pod traffic, and a route the CCM fails
 * to create would taint its node NetworkUnavailable (hcloud-cloud-controller-manager
 * v1.32.0 internal/config/config.go: HCLOUD_NETWORK_ROUTES_ENABLED).
 */
export function ccmValues(location: string): Record<string, unknown> {
    return {
        networking: { enabled: true, clusterCIDR: CLUSTER_CIDR },
        env: {
            HCLOUD_LOAD_BALANCERS_LOCATION: { value: location },
            HCLOUD_LOAD_BALANCERS_USE_PRIVATE_IP: { value: "true" },
            HCLOUD_NETWORK_ROUTES_ENABLED: { value: "false" },
        },
    };
}

/**
 * Values for the Hetzner CSI chart: the default class deletes volumes with their
 * claims; every new volume carries `labels` (controller.volumeExtraLabels ->
 * HCLOUD_VOLUME_EXTRA_LABELS, hetznercloud/csi-driver v2.21.2
 * chart/templates/controller/deployment.yaml), so the ones a destroy leaves
 * (retained on purpose) are found with `hcloud volume list -l cluster=<name>`.
 */
export function csiValues(labels: Readonly<Record<string, string>>): Record<string, unknown> {
    return {
        storageClasses: [{ name: "hcloud-volumes", defaultStorageClass: true, reclaimPolicy: "Delete" }],
        controller: { volumeExtraLabels: { ...labels } },
    };
}

export class ClusterAddons extends pulumi.ComponentResource {
    readonly retainStorageClass: k8s.storage.v1.StorageClass;
    /** What workloads wait for: the cloud controller and CSI driver charts and the StorageClass (not the upgrade controller). */
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: ClusterAddonsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cluster:ClusterAddons", name, {}, opts);
        const child = { parent: this, provider: args.provider };

        // Read by both the CCM chart (token, network) and the CSI chart (token).
        const hcloudSecret = new k8s.core.v1.Secret(`${name}-hcloud`, {
            metadata: { name: "hcloud", namespace: "kube-system" },
            type: "Opaque",
            stringData: {
                token: pulumi.secret(args.hcloudToken),
                network: pulumi.output(args.networkId).apply(String),
            },
        }, child);

        const helmChart = (chartName: string, version: string, values: Record<string, unknown>, bootstrap: boolean) =>
            // k3s's helm controller installs it in-cluster: no helm binary on the machine running Pulumi.
            new k8s.apiextensions.CustomResource(`${name}-${chartName}`, {
                apiVersion: "helm.cattle.io/v1",
                kind: "HelmChart",
                metadata: { name: chartName, namespace: "kube-system" },
                spec: {
                    repo: HETZNER_CHART_REPO,
                    chart: chartName,
                    version,
                    targetNamespace: "kube-system",
                    // The CCM must run before nodes are initialised, so its install job may too.
                    bootstrap,
                    valuesContent: stringify(values),
                },
            }, { ...child, dependsOn: [hcloudSecret] });
        const ccm = helmChart("hcloud-cloud-controller-manager", VERSIONS.hcloudCcmChart, ccmValues(args.location), true);
        const csi = helmChart("hcloud-csi", VERSIONS.hcloudCsiChart, csiValues(args.volumeLabels), false);

        this.retainStorageClass = new k8s.storage.v1.StorageClass(`${name}-retain`, {
            metadata: { name: RETAIN_STORAGE_CLASS },
            provisioner: "csi.hetzner.cloud",
            reclaimPolicy: "Retain",
            volumeBindingMode: "WaitForFirstConsumer",
            allowVolumeExpansion: true,
        }, child);

        this.ready = [ccm, csi, this.retainStorageClass];

        new UpgradeController(`${name}-upgrades`, {
            k3sVersion: args.k3sVersion,
            kubectlImage: kubectlImage(args.k3sVersion),
            provider: args.provider,
        }, { parent: this });

        this.registerOutputs({ retainStorageClass: RETAIN_STORAGE_CLASS, k3sVersion: args.k3sVersion });
    }
}
