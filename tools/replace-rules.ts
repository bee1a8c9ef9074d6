// When a changed input replaces a resource instead of updating it, per the
// providers we pin, and which resources hold data or identity (stateful).
// Sources are cited per table; tools/plan.ts applies them.

/** Any changed input replaces. */
const EVERY_INPUT = "*";

/**
 * Pulumi type -> input paths whose change makes the provider replace the resource.
 * hcloud: terraform-provider-hcloud v1.68.0 (behind @pulumi/hcloud 1.41.0), the
 * ForceNew / RequiresReplace attributes of internal/<resource>/resource*.go; a
 * subnet has no Update at all. random: terraform-provider-random
 * internal/provider/resource_bytes.go, resource_password.go (every input).
 * tls: resource_private_key.go. command: remote.Command replaceOnChanges
 * ["triggers[*]"] (@pulumi/command 1.2.1). Helm Release: pulumi-kubernetes
 * provider/pkg/provider/helm_release.go (name and namespace only).
 * docker-build Image never replaces (provider/internal/image.go Diff).
 */
const PROVIDER_REPLACE_PATHS: Readonly<Record<string, readonly string[]>> = {
    "hcloud:index/server:Server": ["image", "location", "userData", "sshKeys"],
    "hcloud:index/primaryIp:PrimaryIp": ["type", "location"],
    "hcloud:index/network:Network": ["ipRange"],
    "hcloud:index/networkSubnet:NetworkSubnet": [EVERY_INPUT],
    "hcloud:index/loadBalancer:LoadBalancer": ["location", "networkZone"],
    "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork": ["loadBalancerId", "networkId", "subnetId", "ip"],
    "hcloud:index/loadBalancerService:LoadBalancerService": ["loadBalancerId", "protocol", "listenPort"],
    "hcloud:index/loadBalancerTarget:LoadBalancerTarget": ["loadBalancerId", "serverId", "labelSelector", "ip"],
    "hcloud:index/sshKey:SshKey": ["publicKey"],
    "hcloud:index/volume:Volume": ["location"],
    "random:index/randomBytes:RandomBytes": ["keepers", "length"],
    "random:index/randomPassword:RandomPassword": [EVERY_INPUT],
    "tls:index/privateKey:PrivateKey": ["algorithm", "rsaBits", "ecdsaCurve"],
    "command:remote:Command": ["triggers"],
    "kubernetes:helm.sh/v3:Release": ["name", "namespace"],
};

/**
 * Kubernetes "<group>/<version> <Kind>" -> paths pulumi-kubernetes replaces the
 * object for (provider/pkg/provider/diff.go, forceNewProperties; unchanged
 * since 2024 up to the 4.34 we pin). Kinds not listed (custom resources,
 * Ingress, NetworkPolicy, policy/v1 PDBs) replace only on name or namespace.
 * Secret and ConfigMap data replace too: the provider's enableSecretMutable and
 * enableConfigMapMutable default to false and we do not set them.
 */
const KUBERNETES_IMMUTABLE: Readonly<Record<string, readonly string[]>> = {
    "apps/v1 Deployment": ["spec.selector"],
    "apps/v1 DaemonSet": ["spec.selector"],
    "apps/v1 StatefulSet": ["spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"],
    "batch/v1 Job": ["spec.completions", "spec.parallelism", "spec.selector", "spec.template"],
    "policy/v1beta1 PodDisruptionBudget": ["spec"],
    "rbac.authorization.k8s.io/v1 RoleBinding": ["roleRef"],
    "rbac.authorization.k8s.io/v1 ClusterRoleBinding": ["roleRef"],
    "storage.k8s.io/v1 StorageClass": ["parameters", "provisioner"],
    "core/v1 PersistentVolumeClaim": ["spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeName"],
    "core/v1 Service": ["spec.clusterIP"],
    "core/v1 ResourceQuota": ["spec.scopes"],
    "core/v1 Secret": ["type", "data", "stringData"],
    "core/v1 ConfigMap": ["data", "binaryData"],
};

/** Paths of every Kubernetes object whose change is a new object: the name and namespace are its identity. */
const KUBERNETES_IDENTITY = ["metadata.name", "metadata.namespace"];

function under(path: string, prefix: string): boolean {
    return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

function kubernetesKind(type: string): { group: string; version: string; kind: string } | undefined {
    const m = /^kubernetes:(?:(.+)\/)?([^/:]+):([^:]+)$/.exec(type);
    if (!m) return undefined;
    return { group: m[1] ?? "core", version: m[2], kind: m[3] };
}

/** Why changing `paths` replaces a resource of `type`, or undefined when it is an update. */
export function replacementReason(type: string, paths: readonly string[]): string | undefined {
    const k8s = kubernetesKind(type);
    if (k8s && type !== "kubernetes:helm.sh/v3:Release") {
        const identity = paths.filter((p) => KUBERNETES_IDENTITY.some((i) => under(p, i)));
        if (identity.length > 0) return `${identity.join(", ")} changed: a Kubernetes object with another name or namespace is another object`;
        const immutable = KUBERNETES_IMMUTABLE[`${k8s.group}/${k8s.version} ${k8s.kind}`] ?? [];
        const forced = paths.filter((p) => immutable.some((i) => under(p, i)));
        // The same name: pulumi-kubernetes deletes the old object before creating the new one.
        if (forced.length > 0) return `${forced.join(", ")}: pulumi-kubernetes replaces a ${k8s.kind} on this change (deleting the old one first)`;
        return undefined;
    }
    const rules = PROVIDER_REPLACE_PATHS[type] ?? [];
    const forced = paths.filter((p) => rules.some((i) => i === EVERY_INPUT || under(p, i)));
    return forced.length > 0 ? `${forced.join(", ")}: the provider replaces ${type.split(":").pop()} on this change` : undefined;
}

/** Types that hold data or identity a replace or delete loses. */
const STATEFUL_TYPES = new Set([
    "hcloud:index/server:Server",
    "hcloud:index/primaryIp:PrimaryIp",
    "hcloud:index/network:Network",
    "hcloud:index/networkSubnet:NetworkSubnet",
    "hcloud:index/volume:Volume",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
    "kubernetes:postgresql.cnpg.io/v1:Database",
    // Generated passwords, tokens and keys: a new one locks out whatever holds the old.
    "random:index/randomPassword:RandomPassword",
    "random:index/randomBytes:RandomBytes",
    "tls:index/privateKey:PrivateKey",
]);

/** True for a resource whose replacement or deletion loses data or identity; namespaces count when they hold such data. */
export function statefulKind(type: string, inputs: unknown, namespacesWithData: ReadonlySet<string>): boolean {
    if (STATEFUL_TYPES.has(type)) return true;
    if (type === "kubernetes:core/v1:Namespace") {
        const name = (inputs as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
        return typeof name === "string" && namespacesWithData.has(name);
    }
    return false;
}
