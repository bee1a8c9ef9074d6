// What a Hetzner k3s cluster needs in-cluster before apps: the Hetzner cloud
// controller manager and CSI driver (their API token as a Secret created here,
// never in user-data), a volume class that keeps data, and the
// system-upgrade-controller with Plans pinned to the configured k3s version.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { CLUSTER_CIDR } from "./k3s-render";
import { HETZNER_CHART_REPO, VERSIONS } from "./versions";

export interface ClusterAddonsArgs {
    readonly hcloudToken: pulumi.Input<string>;
    readonly networkId: pulumi.Input<number>;
    readonly location: string;
    readonly k3sVersion: string;
    readonly provider: k8s.Provider;
}

/** StorageClass whose volumes outlive their claims: for databases and anything stored. */
export const RETAIN_STORAGE_CLASS = "hcloud-volumes-retain";
export const UPGRADE_NAMESPACE = "system-upgrade";

const CONTROL_PLANE_TOLERATIONS = [
    { key: "CriticalAddonsOnly", operator: "Exists" },
    { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
    { key: "node-role.kubernetes.io/etcd", operator: "Exists", effect: "NoExecute" },
];

/** Values for the Hetzner CCM chart: node addresses and routes from the private network. */
export function ccmValues(location: string): Record<string, unknown> {
    return {
        networking: { enabled: true, clusterCIDR: CLUSTER_CIDR },
        env: {
            HCLOUD_LOAD_BALANCERS_LOCATION: { value: location },
            HCLOUD_LOAD_BALANCERS_USE_PRIVATE_IP: { value: "true" },
        },
    };
}

/** Values for the Hetzner CSI chart: the default class deletes volumes with their claims. */
export function csiValues(): Record<string, unknown> {
    return { storageClasses: [{ name: "hcloud-volumes", defaultStorageClass: true, reclaimPolicy: "Delete" }] };
}

/** system-upgrade-controller Plans: servers one at a time, then agents (drained) one at a time. */
export function upgradePlans(k3sVersion: string): { server: Record<string, unknown>; agent: Record<string, unknown> } {
    const upgrade = { image: VERSIONS.k3sUpgradeImage };
    return {
        server: {
            concurrency: 1,
            cordon: true,
            nodeSelector: { matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "In", values: ["true"] }] },
            tolerations: CONTROL_PLANE_TOLERATIONS,
            serviceAccountName: "system-upgrade",
            upgrade,
            version: k3sVersion,
        },
        agent: {
            concurrency: 1,
            cordon: true,
            drain: { force: true, skipWaitForDeleteTimeout: 60 },
            nodeSelector: { matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist" }] },
            // Agents wait until every server runs the new version.
            prepare: { image: VERSIONS.k3sUpgradeImage, args: ["prepare", "k3s-server"] },
            serviceAccountName: "system-upgrade",
            upgrade,
            version: k3sVersion,
        },
    };
}

export class ClusterAddons extends pulumi.ComponentResource {
    readonly retainStorageClass: k8s.storage.v1.StorageClass;

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
        helmChart("hcloud-cloud-controller-manager", VERSIONS.hcloudCcmChart, ccmValues(args.location), true);
        helmChart("hcloud-csi", VERSIONS.hcloudCsiChart, csiValues(), false);

        this.retainStorageClass = new k8s.storage.v1.StorageClass(`${name}-retain`, {
            metadata: { name: RETAIN_STORAGE_CLASS },
            provisioner: "csi.hetzner.cloud",
            reclaimPolicy: "Retain",
            volumeBindingMode: "WaitForFirstConsumer",
            allowVolumeExpansion: true,
        }, child);

        this.installUpgradeController(name, args.k3sVersion, child);

        this.registerOutputs({ retainStorageClass: RETAIN_STORAGE_CLASS, k3sVersion: args.k3sVersion });
    }

    private installUpgradeController(name: string, k3sVersion: string, child: pulumi.CustomResourceOptions): void {
        const ns = new k8s.core.v1.Namespace(`${name}-suc-ns`, {
            metadata: { name: UPGRADE_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "privileged" } },
        }, child);
        const inNs = { ...child, dependsOn: [ns] };
        const sa = new k8s.core.v1.ServiceAccount(`${name}-suc-sa`, {
            metadata: { name: "system-upgrade", namespace: UPGRADE_NAMESPACE },
        }, inNs);
        // Upgrading nodes means draining them and running privileged jobs: upstream binds cluster-admin.
        new k8s.rbac.v1.ClusterRoleBinding(`${name}-suc-admin`, {
            metadata: { name: "system-upgrade" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
            subjects: [{ kind: "ServiceAccount", name: "system-upgrade", namespace: UPGRADE_NAMESPACE }],
        }, child);
        const env = new k8s.core.v1.ConfigMap(`${name}-suc-env`, {
            metadata: { name: "default-controller-env", namespace: UPGRADE_NAMESPACE },
            data: {
                SYSTEM_UPGRADE_CONTROLLER_DEBUG: "false",
                SYSTEM_UPGRADE_CONTROLLER_THREADS: "2",
                SYSTEM_UPGRADE_JOB_ACTIVE_DEADLINE_SECONDS: "900",
                SYSTEM_UPGRADE_JOB_BACKOFF_LIMIT: "99",
                SYSTEM_UPGRADE_JOB_IMAGE_PULL_POLICY: "IfNotPresent",
                SYSTEM_UPGRADE_JOB_PRIVILEGED: "true",
                SYSTEM_UPGRADE_JOB_TTL_SECONDS_AFTER_FINISH: "900",
                SYSTEM_UPGRADE_PLAN_POLLING_INTERVAL: "15m",
            },
        }, inNs);
        const crd = new k8s.apiextensions.v1.CustomResourceDefinition(`${name}-plan-crd`, {
            metadata: { name: "plans.upgrade.cattle.io" },
            spec: {
                group: "upgrade.cattle.io",
                names: { kind: "Plan", plural: "plans", singular: "plan" },
                scope: "Namespaced",
                versions: [{
                    name: "v1",
                    served: true,
                    storage: true,
                    subresources: { status: {} },
                    additionalPrinterColumns: [
                        { name: "Version", type: "string", jsonPath: ".spec.version" },
                        { name: "Latest", type: "string", jsonPath: ".status.latestVersion" },
                    ],
                    schema: {
                        openAPIV3Schema: {
                            type: "object",
                            properties: {
                                spec: { type: "object", x_kubernetes_preserve_unknown_fields: true },
                                status: { type: "object", x_kubernetes_preserve_unknown_fields: true },
                            },
                        },
                    },
                }],
            },
        }, child);
        const controllerLabel = { "upgrade.cattle.io/controller": "system-upgrade-controller" };
        const hostDir = (volume: string, hostPath: string) => ({
            volume: { name: volume, hostPath: { path: hostPath, type: "DirectoryOrCreate" } },
            mount: { name: volume, mountPath: hostPath },
        });
        const certDirs = [hostDir("etc-ssl", "/etc/ssl"), hostDir("etc-pki", "/etc/pki"), hostDir("etc-ca-certificates", "/etc/ca-certificates")];
        const controller = new k8s.apps.v1.Deployment(`${name}-suc`, {
            metadata: { name: "system-upgrade-controller", namespace: UPGRADE_NAMESPACE },
            spec: {
                replicas: 1,
                selector: { matchLabels: controllerLabel },
                template: {
                    metadata: { labels: controllerLabel },
                    spec: {
                        serviceAccountName: "system-upgrade",
                        affinity: {
                            nodeAffinity: {
                                requiredDuringSchedulingIgnoredDuringExecution: {
                                    nodeSelectorTerms: [{ matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "In", values: ["true"] }] }],
                                },
                            },
                        },
                        tolerations: CONTROL_PLANE_TOLERATIONS,
                        containers: [{
                            name: "system-upgrade-controller",
                            image: VERSIONS.systemUpgradeController,
                            imagePullPolicy: "IfNotPresent",
                            envFrom: [{ configMapRef: { name: "default-controller-env" } }],
                            env: [
                                { name: "SYSTEM_UPGRADE_CONTROLLER_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.labels['upgrade.cattle.io/controller']" } } },
                                { name: "SYSTEM_UPGRADE_CONTROLLER_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                            ],
                            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                            volumeMounts: [...certDirs.map((d) => d.mount), { name: "tmp", mountPath: "/tmp" }],
                        }],
                        volumes: [...certDirs.map((d) => d.volume), { name: "tmp", emptyDir: {} }],
                    },
                },
            },
        }, { ...child, dependsOn: [sa, env, crd] });

        const plans = upgradePlans(k3sVersion);
        for (const [role, spec] of Object.entries(plans)) {
            new k8s.apiextensions.CustomResource(`${name}-plan-${role}`, {
                apiVersion: "upgrade.cattle.io/v1",
                kind: "Plan",
                metadata: { name: `k3s-${role}`, namespace: UPGRADE_NAMESPACE },
                spec,
            }, { ...child, dependsOn: [crd, controller] });
        }
    }
}
