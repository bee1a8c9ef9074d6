// k3s upgrades in place: rancher/system-upgrade-controller as its release
// manifests install it, and Plans pinned to the configured k3s version
// (servers one at a time, then agents, drained one at a time).
//
// Follows rancher/system-upgrade-controller v0.17.0 manifests/
// (system-upgrade-controller.yaml, clusterrole.yaml, clusterrolebinding.yaml)
// with one change: namespaces on the binding subjects, which upstream's
// kustomization fills in. The controller registers its own Plan CRD at start
// (pkg/upgrade/controller.go `registerCRD`, create-or-update), so this
// program does not own one; Plans wait until it is Established.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CrdsEstablished } from "./crds-established";
import { denyMetadataPolicy } from "../apps/app-render";
import { VERSIONS } from "../versions";

export const UPGRADE_NAMESPACE = "system-upgrade";
const SERVICE_ACCOUNT = "system-upgrade";
export const PLAN_CRD = "plans.upgrade.cattle.io";
/** Drain skips pods with this label, so the controller never evicts itself (upstream pkg/upgrade/job/job.go). */
export const CONTROLLER_LABEL = { "upgrade.cattle.io/controller": "system-upgrade-controller" };
/** An agent whose pods cannot be evicted in this time (a PDB at its limit) is upgraded anyway instead of staying cordoned. */
export const AGENT_DRAIN_TIMEOUT = "15m";

const CONTROL_PLANE_TOLERATIONS = [
    { key: "CriticalAddonsOnly", operator: "Exists" },
    { key: "node-role.kubernetes.io/master", operator: "Exists", effect: "NoSchedule" },
    { key: "node-role.kubernetes.io/controlplane", operator: "Exists", effect: "NoSchedule" },
    { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
    { key: "node-role.kubernetes.io/etcd", operator: "Exists", effect: "NoExecute" },
];

/** The controller's settings, upstream's `default-controller-env` ConfigMap. */
export const CONTROLLER_ENV: Record<string, string> = {
    SYSTEM_UPGRADE_CONTROLLER_DEBUG: "false",
    SYSTEM_UPGRADE_CONTROLLER_THREADS: "2",
    SYSTEM_UPGRADE_CONTROLLER_LEADER_ELECT: "true",
    SYSTEM_UPGRADE_JOB_ACTIVE_DEADLINE_SECONDS: "900",
    SYSTEM_UPGRADE_JOB_BACKOFF_LIMIT: "99",
    SYSTEM_UPGRADE_JOB_IMAGE_PULL_POLICY: "Always",
    SYSTEM_UPGRADE_JOB_KUBECTL_IMAGE: VERSIONS.systemUpgradeKubectl,
    SYSTEM_UPGRADE_JOB_PRIVILEGED: "true",
    SYSTEM_UPGRADE_JOB_TTL_SECONDS_AFTER_FINISH: "900",
    SYSTEM_UPGRADE_PLAN_POLLING_INTERVAL: "15m",
};

type PolicyRule = k8s.types.input.rbac.v1.PolicyRule;

/** What the controller may do cluster-wide (upstream ClusterRole system-upgrade-controller). */
export const CONTROLLER_CLUSTER_RULES: PolicyRule[] = [
    { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch"] },
    { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get", "list", "watch", "create", "patch", "update"] },
    { apiGroups: [""], resources: ["namespaces", "nodes"], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["nodes"], verbs: ["update"] },
    { apiGroups: [""], resources: ["events"], verbs: ["get", "create", "patch", "update"] },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["system-upgrade-controller"], verbs: ["get", "update"] },
    { apiGroups: ["upgrade.cattle.io"], resources: ["plans", "plans/status"], verbs: ["get", "list", "watch", "create", "patch", "update", "delete"] },
];

/** In its namespace: the upgrade Jobs and the Plans' secrets (upstream Role system-upgrade-controller). */
export const CONTROLLER_NAMESPACE_RULES: PolicyRule[] = [
    { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "delete", "deletecollection", "patch", "update", "get", "list", "watch"] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
];

/** What the upgrade Jobs' cordon and drain steps need (upstream ClusterRole system-upgrade-controller-drainer). */
export const DRAINER_RULES: PolicyRule[] = [
    { apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "delete"] },
    { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] },
    { apiGroups: ["apps"], resources: ["statefulsets", "daemonsets", "replicasets"], verbs: ["get", "list"] },
];

/** The controller's Deployment, as upstream ships it. */
export function upgradeControllerDeployment(): k8s.types.input.apps.v1.Deployment {
    const podLabels = { "app.kubernetes.io/component": "controller", "app.kubernetes.io/name": "system-upgrade-controller", ...CONTROLLER_LABEL };
    const certDir = (name: string, hostPath: string) => ({
        volume: { name, hostPath: { path: hostPath, type: "DirectoryOrCreate" } },
        mount: { name, mountPath: hostPath, readOnly: true },
    });
    const certDirs = [certDir("etc-ssl", "/etc/ssl"), certDir("etc-pki", "/etc/pki"), certDir("etc-ca-certificates", "/etc/ca-certificates")];
    const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
    return {
        metadata: { name: "system-upgrade-controller", namespace: UPGRADE_NAMESPACE },
        spec: {
            // One controller at a time, also during its own rollout (it holds a leader lease besides).
            strategy: { type: "Recreate" },
            selector: { matchLabels: CONTROLLER_LABEL },
            template: {
                metadata: { labels: podLabels },
                spec: {
                    affinity: {
                        nodeAffinity: {
                            requiredDuringSchedulingIgnoredDuringExecution: {
                                nodeSelectorTerms: [{
                                    matchExpressions: [
                                        { key: "node-role.kubernetes.io/control-plane", operator: "Exists" },
                                        { key: "kubernetes.io/os", operator: "In", values: ["linux"] },
                                    ],
                                }],
                            },
                        },
                        podAntiAffinity: {
                            requiredDuringSchedulingIgnoredDuringExecution: [{
                                topologyKey: "kubernetes.io/hostname",
                                labelSelector: { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: ["system-upgrade-controller"] }] },
                            }],
                        },
                    },
                    serviceAccountName: SERVICE_ACCOUNT,
                    tolerations: CONTROL_PLANE_TOLERATIONS,
                    containers: [{
                        name: "system-upgrade-controller",
                        image: VERSIONS.systemUpgradeController,
                        imagePullPolicy: "IfNotPresent",
                        securityContext: {
                            runAsNonRoot: true,
                            runAsUser: 65534,
                            runAsGroup: 65534,
                            allowPrivilegeEscalation: false,
                            seccompProfile: { type: "RuntimeDefault" },
                            capabilities: { drop: ["ALL"] },
                        },
                        envFrom: [{ configMapRef: { name: "default-controller-env" } }],
                        env: [
                            field("SYSTEM_UPGRADE_CONTROLLER_NAME", "metadata.labels['upgrade.cattle.io/controller']"),
                            field("SYSTEM_UPGRADE_CONTROLLER_NAMESPACE", "metadata.namespace"),
                            field("SYSTEM_UPGRADE_CONTROLLER_NODE_NAME", "spec.nodeName"),
                        ],
                        resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                        volumeMounts: [...certDirs.map((d) => d.mount), { name: "tmp", mountPath: "/tmp" }],
                    }],
                    volumes: [...certDirs.map((d) => d.volume), { name: "tmp", emptyDir: {} }],
                },
            },
        },
    };
}

/** Plans: servers one at a time (cordoned), then agents (drained, with a timeout) one at a time. */
export function upgradePlans(k3sVersion: string): { server: Record<string, unknown>; agent: Record<string, unknown> } {
    const upgrade = { image: VERSIONS.k3sUpgradeImage };
    return {
        server: {
            concurrency: 1,
            cordon: true,
            nodeSelector: { matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "In", values: ["true"] }] },
            tolerations: CONTROL_PLANE_TOLERATIONS,
            serviceAccountName: SERVICE_ACCOUNT,
            upgrade,
            version: k3sVersion,
        },
        agent: {
            concurrency: 1,
            cordon: true,
            // A string timeout is passed to `kubectl drain --timeout` as is (upstream pkg/upgrade/job/job.go).
            drain: { force: true, skipWaitForDeleteTimeout: 60, timeout: AGENT_DRAIN_TIMEOUT },
            nodeSelector: { matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist" }] },
            // Agents wait until every server runs the new version.
            prepare: { image: VERSIONS.k3sUpgradeImage, args: ["prepare", "k3s-server"] },
            serviceAccountName: SERVICE_ACCOUNT,
            upgrade,
            version: k3sVersion,
        },
    };
}

export interface UpgradeControllerArgs {
    readonly k3sVersion: string;
    /** kubectl image for the in-cluster wait on the Plan CRD. */
    readonly kubectlImage: string;
    readonly provider: k8s.Provider;
}

export class UpgradeController extends pulumi.ComponentResource {
    constructor(name: string, args: UpgradeControllerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cluster:UpgradeController", name, {}, opts);
        const child = { parent: this, provider: args.provider };
        // Upgrade Jobs run privileged with the host's namespaces and root filesystem.
        const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
            metadata: { name: UPGRADE_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "privileged" } },
        }, child);
        const inNs = { ...child, dependsOn: [ns] };
        // The controller needs only the API server; the upgrade Jobs use the host's network, which no NetworkPolicy governs.
        new k8s.networking.v1.NetworkPolicy(`${name}-deny-cloud-metadata`, denyMetadataPolicy(UPGRADE_NAMESPACE, { "app.kubernetes.io/managed-by": "pulumi" }), inNs);
        const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
            metadata: { name: SERVICE_ACCOUNT, namespace: UPGRADE_NAMESPACE },
        }, inNs);
        const subjects = [{ kind: "ServiceAccount", name: SERVICE_ACCOUNT, namespace: UPGRADE_NAMESPACE }];
        const clusterRole = (resourceName: string, roleName: string, rules: PolicyRule[], bindingName: string) => {
            const role = new k8s.rbac.v1.ClusterRole(`${name}-${resourceName}`, { metadata: { name: roleName }, rules }, child);
            return new k8s.rbac.v1.ClusterRoleBinding(`${name}-${resourceName}-binding`, {
                metadata: { name: bindingName },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: roleName },
                subjects,
            }, { ...child, dependsOn: [role] });
        };
        const controllerBinding = clusterRole("controller", "system-upgrade-controller", CONTROLLER_CLUSTER_RULES, "system-upgrade");
        const drainerBinding = clusterRole("drainer", "system-upgrade-controller-drainer", DRAINER_RULES, "system-upgrade-drainer");
        const role = new k8s.rbac.v1.Role(`${name}-role`, {
            metadata: { name: "system-upgrade-controller", namespace: UPGRADE_NAMESPACE },
            rules: CONTROLLER_NAMESPACE_RULES,
        }, inNs);
        const roleBinding = new k8s.rbac.v1.RoleBinding(`${name}-role-binding`, {
            metadata: { name: "system-upgrade", namespace: UPGRADE_NAMESPACE },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "system-upgrade-controller" },
            subjects,
        }, { ...inNs, dependsOn: [ns, role] });
        const env = new k8s.core.v1.ConfigMap(`${name}-env`, {
            metadata: { name: "default-controller-env", namespace: UPGRADE_NAMESPACE },
            data: CONTROLLER_ENV,
        }, inNs);
        const controller = new k8s.apps.v1.Deployment(`${name}-controller`, upgradeControllerDeployment(), {
            ...child,
            dependsOn: [sa, env, controllerBinding, drainerBinding, roleBinding],
        });
        const crd = new CrdsEstablished(`${name}-plan-crd`, { crds: [PLAN_CRD], kubectlImage: args.kubectlImage, provider: args.provider }, {
            parent: this,
            dependsOn: [controller],
        });
        for (const [role, spec] of Object.entries(upgradePlans(args.k3sVersion))) {
            new k8s.apiextensions.CustomResource(`${name}-plan-${role}`, {
                apiVersion: "upgrade.cattle.io/v1",
                kind: "Plan",
                metadata: { name: `k3s-${role}`, namespace: UPGRADE_NAMESPACE },
                spec,
            }, { ...child, dependsOn: [crd] });
        }
        this.registerOutputs({ k3sVersion: args.k3sVersion });
    }
}
