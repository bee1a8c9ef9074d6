// Rules for workloads: what a rollout, a drain and a restart rely on.
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { checkPodSecurity } from "./pod-security";
import { type Container, configMapsOf, envValue, goDurationSeconds, namespaceOf, podSpecOf, podTemplateOf, workloadContainers } from "./pods";

/**
 * A reference that names exactly one image: a digest, or a tag other than
 * `latest` (no tag, or an empty one, means latest). The program's
 * apps.<name>.image check uses this too.
 */
export function isPinnedImage(ref: string): boolean {
    if (/@sha256:[0-9a-f]{64}$/.test(ref)) return true;
    const lastSegment = ref.slice(ref.lastIndexOf("/") + 1);
    const colon = lastSegment.indexOf(":");
    const tag = colon > 0 ? lastSegment.slice(colon + 1) : "";
    return tag !== "" && tag !== "latest";
}

export const pinnedImages: ResourceValidationPolicy = {
    name: "pinned-images",
    description: "Every container image is pinned to a release tag or a digest, never `latest` or no tag.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Set the image to a release tag (app:1.4.2) or a digest (app@sha256:...); the platform's apps.<name>.image refuses `latest` already.",
    validateResource: (args, reportViolation) => {
        for (const c of workloadContainers(args.type, args.props)) {
            if (typeof c.image === "string" && !isPinnedImage(c.image)) {
                reportViolation(`container '${c.name ?? "?"}' has an image that is not pinned to a release tag or digest`);
            }
        }
    },
};

export const httpProbes: ResourceValidationPolicy = {
    name: "http-probes",
    description: "A Deployment container that serves a port has readiness and startup probes, and its liveness probe does not check the readiness (dependency health) path, so a rollout never sends traffic to a pod that is not ready and a database outage never restarts every pod.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Give the container a readinessProbe on the app's health path (which checks dependencies), and a startupProbe and livenessProbe on its liveness path (the process only); the platform's App component sets all three (apps.<app>.healthPath, livenessPath).",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:apps/v1:Deployment") return;
        const pod = podSpecOf(args.type, args.props);
        for (const c of pod?.containers ?? []) {
            if ((c.ports?.length ?? 0) === 0) continue;
            const missing = [c.readinessProbe ? "" : "readinessProbe", c.startupProbe ? "" : "startupProbe"].filter(Boolean);
            if (missing.length > 0) reportViolation(`container '${c.name ?? "?"}' serves a port but has no ${missing.join(" and no ")}`);
            const livePath = c.livenessProbe?.httpGet?.path;
            if (livePath && livePath === c.readinessProbe?.httpGet?.path) {
                reportViolation(`container '${c.name ?? "?"}' has its liveness probe on the readiness path, which checks dependencies: an outage of one would restart every pod`);
            }
        }
    },
};

export const pdbNeverBlocksDrains: ResourceValidationPolicy = {
    name: "pdb-never-blocks-drains",
    description: "A PodDisruptionBudget always allows one pod to be evicted, so node drains and upgrades never hang on it.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Use maxUnavailable: 1 (or a minAvailable below the replica count); for a singleton, no PDB.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:policy/v1:PodDisruptionBudget") return;
        const spec = (args.props.spec ?? {}) as { maxUnavailable?: number | string; minAvailable?: number | string };
        if (spec.maxUnavailable === 0 || spec.maxUnavailable === "0%") reportViolation("maxUnavailable is zero: no pod may ever be evicted");
        if (spec.minAvailable === "100%") reportViolation("minAvailable is 100%: no pod may ever be evicted");
    },
};

export const noServiceAccountToken: ResourceValidationPolicy = {
    name: "no-service-account-token",
    description: "A pod on its namespace's default service account does not mount an API token it has no use for.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Set automountServiceAccountToken: false in the pod template, or give the pod a service account of its own with only the rights it needs.",
    validateResource: (args, reportViolation) => {
        const pod = podSpecOf(args.type, args.props) as { serviceAccountName?: string; automountServiceAccountToken?: boolean } | undefined;
        if (pod && !pod.serviceAccountName && pod.automountServiceAccountToken !== false) reportViolation("the pod mounts the default service account's token");
    },
};

export const zeroDowntimeRollouts: ResourceValidationPolicy = {
    name: "zero-downtime-rollouts",
    description: "A Deployment of more than one pod rolls out with maxUnavailable 0, so capacity never drops during a rollout.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "strategy: { type: RollingUpdate, rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }; Recreate only for a singleton.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:apps/v1:Deployment") return;
        const spec = (args.props.spec ?? {}) as { replicas?: number; strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } } };
        if ((spec.replicas ?? 1) <= 1) return;
        if (spec.strategy?.type === "Recreate") reportViolation("a Deployment of several pods uses the Recreate strategy");
        else if (spec.strategy?.rollingUpdate?.maxUnavailable !== 0) reportViolation("maxUnavailable is not 0");
    },
};

export const requestsAndLimits: ResourceValidationPolicy = {
    name: "requests-and-limits",
    description: "Every container requests CPU and memory and has a memory limit, so the scheduler places it and one pod cannot starve a node.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Set resources.requests.cpu, resources.requests.memory and resources.limits.memory (apps: cpu and memory settings).",
    validateResource: (args, reportViolation) => {
        for (const c of workloadContainers(args.type, args.props)) {
            const missing = [c.resources?.requests?.cpu ? "" : "a CPU request", c.resources?.requests?.memory ? "" : "a memory request", c.resources?.limits?.memory ? "" : "a memory limit"].filter(Boolean);
            if (missing.length > 0) reportViolation(`container '${c.name ?? "?"}' has no ${missing.join(", no ")}`);
        }
    },
};

export const noHostPorts: ResourceValidationPolicy = {
    name: "no-host-ports",
    description: "No workload binds a host port: only the ingress controller does, and its chart does that.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Expose the port through a ClusterIP Service and an Ingress.",
    validateResource: (args, reportViolation) => {
        for (const c of workloadContainers(args.type, args.props)) {
            if ((c.ports ?? []).some((p) => p.hostPort !== undefined && p.hostPort !== null)) reportViolation(`container '${c.name ?? "?"}' binds a host port`);
        }
    },
};

const DEFAULT_MIN_REPLICAS = 2;

export const minReplicas: ResourceValidationPolicy = {
    name: "min-replicas",
    description: "A Deployment that is not a singleton runs at least two pods (an autoscaler at least two as its minimum), so a node loss or drain never takes the app down.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "pulumi config set --path 'platform:apps.<app>.replicas' 2 (or autoscaling.minReplicas 2); an app that must run once is a singleton (apps.<app>.singleton true, Recreate rollouts). A stack may lower the minimum in its policy config (min-replicas.minReplicas).",
    configSchema: {
        properties: { minReplicas: { type: "integer", minimum: 1, default: DEFAULT_MIN_REPLICAS, description: "Fewest pods a non-singleton Deployment may run." } },
    },
    validateResource: (args, reportViolation) => {
        const min = args.getConfig<{ minReplicas?: number }>().minReplicas ?? DEFAULT_MIN_REPLICAS;
        if (args.type === "kubernetes:apps/v1:Deployment") {
            const spec = (args.props.spec ?? {}) as { replicas?: number; strategy?: { type?: string } };
            // A singleton (Recreate) runs one pod on purpose; without replicas an autoscaler sets the count.
            if (spec.strategy?.type === "Recreate" || spec.replicas === undefined) return;
            if (spec.replicas < min) reportViolation(`the Deployment runs ${spec.replicas} pod(s), fewer than ${min}`);
        } else if (args.type === "kubernetes:autoscaling/v2:HorizontalPodAutoscaler") {
            const floor = (args.props.spec as { minReplicas?: number } | undefined)?.minReplicas ?? 1;
            if (floor < min) reportViolation(`the autoscaler may scale down to ${floor} pod(s), fewer than ${min}`);
        }
    },
};

const DEFAULT_EXEMPT_NAMESPACES = ["kube-system", "system-upgrade"];

export const restrictedPodSecurity: ResourceValidationPolicy = {
    name: "restricted-pod-security",
    description: "Every namespace enforces the restricted Pod Security Standard and every pod template in it meets that standard, so the API server never refuses a pod mid-rollout and no pod runs as root or with extra privileges.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Label the namespace pod-security.kubernetes.io/enforce=restricted and give the pod runAsNonRoot, seccompProfile RuntimeDefault, and per container allowPrivilegeEscalation: false and capabilities.drop [ALL], with no host namespaces, host paths or privileged mode; only namespaces listed in the policy's exemptNamespaces (the node upgrade Jobs' system-upgrade) may run privileged pods.",
    configSchema: {
        properties: {
            exemptNamespaces: { type: "array", items: { type: "string" }, default: DEFAULT_EXEMPT_NAMESPACES, description: "Namespaces whose pods need host access (k3s's own, the upgrade Jobs')." },
        },
    },
    validateResource: (args, reportViolation) => {
        const exempt = args.getConfig<{ exemptNamespaces?: string[] }>().exemptNamespaces ?? DEFAULT_EXEMPT_NAMESPACES;
        if (args.type === "kubernetes:core/v1:Namespace") {
            const name = (args.props.metadata as { name?: string } | undefined)?.name ?? "";
            const level = (args.props.metadata as { labels?: Record<string, string> } | undefined)?.labels?.["pod-security.kubernetes.io/enforce"];
            if (!exempt.includes(name) && level !== "restricted") reportViolation("the namespace does not enforce the restricted Pod Security Standard");
            return;
        }
        const template = podTemplateOf(args.type, args.props);
        if (!template || exempt.includes(namespaceOf(args.props))) return;
        const failed = checkPodSecurity("restricted", template.meta, template.spec).map((v) => v.check);
        if (failed.length > 0) reportViolation(`the pod template fails the restricted checks ${failed.join(", ")}`);
    },
};

/** Each long-running workload's containers with what the rules below need: the pod spec, its namespace and ConfigMaps. */
function* servingContainers(resources: readonly PolicyResource[]): Generator<{ r: PolicyResource; c: Container; grace: number; env: (name: string) => string | undefined }> {
    const configMaps = configMapsOf(resources);
    for (const r of resources) {
        if (r.type !== "kubernetes:apps/v1:Deployment" && r.type !== "kubernetes:apps/v1:StatefulSet") continue;
        const pod = podSpecOf(r.type, r.props);
        const ns = namespaceOf(r.props);
        // Kubernetes' default grace period.
        const grace = pod?.terminationGracePeriodSeconds ?? 30;
        for (const c of pod?.containers ?? []) yield { r, c, grace, env: (name) => envValue(c, ns, configMaps, name) };
    }
}

const DEFAULT_PROBE_MARGIN = 1;

export const probeTimeouts: StackValidationPolicy = {
    name: "probe-timeouts",
    description: "A readiness probe waits longer than the app's own dependency health timeout (HEALTH_TIMEOUT), so a slow dependency makes the app answer unhealthy instead of the kubelet timing out first.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Set readinessProbe.timeoutSeconds above HEALTH_TIMEOUT (the platform sets HEALTH_TIMEOUT + 2 s, at least 5 s), or lower apps.<app>.healthTimeout.",
    configSchema: {
        properties: { marginSeconds: { type: "number", minimum: 0, default: DEFAULT_PROBE_MARGIN, description: "How much longer than HEALTH_TIMEOUT the probe must wait." } },
    },
    validateStack: (args, reportViolation) => {
        const margin = args.getConfig<{ marginSeconds?: number }>().marginSeconds ?? DEFAULT_PROBE_MARGIN;
        for (const { r, c, env } of servingContainers(args.resources)) {
            const text = env("HEALTH_TIMEOUT");
            if (!c.readinessProbe || text === undefined) continue;
            const health = goDurationSeconds(text);
            // Kubernetes' default probe timeout.
            const timeout = c.readinessProbe.timeoutSeconds ?? 1;
            if (health === undefined) reportViolation(`container '${c.name ?? "?"}' has a HEALTH_TIMEOUT that is not a duration`, r.urn);
            else if (timeout < health + margin) reportViolation(`container '${c.name ?? "?"}': the readiness probe gives up after ${timeout} s, not at least ${margin} s after the app's own health timeout (${health} s)`, r.urn);
        }
    },
};

const DEFAULT_SHUTDOWN_MARGIN = 5;

export const gracefulShutdown: StackValidationPolicy = {
    name: "graceful-shutdown",
    description: "A pod's termination grace period covers its preStop pause plus the app's shutdown timeout (SHUTDOWN_TIMEOUT), so Kubernetes never kills a pod that is still draining requests.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Raise terminationGracePeriodSeconds above preStop + SHUTDOWN_TIMEOUT + a margin (the platform sets max(2 x shutdown, shutdown + 20 s)), or lower apps.<app>.shutdownTimeout.",
    configSchema: {
        properties: { marginSeconds: { type: "number", minimum: 0, default: DEFAULT_SHUTDOWN_MARGIN, description: "Time left after preStop and shutdown before the kill." } },
    },
    validateStack: (args, reportViolation) => {
        const margin = args.getConfig<{ marginSeconds?: number }>().marginSeconds ?? DEFAULT_SHUTDOWN_MARGIN;
        for (const { r, c, grace, env } of servingContainers(args.resources)) {
            const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
            const text = env("SHUTDOWN_TIMEOUT");
            const shutdown = text === undefined ? 0 : goDurationSeconds(text);
            if (shutdown === undefined) reportViolation(`container '${c.name ?? "?"}' has a SHUTDOWN_TIMEOUT that is not a duration`, r.urn);
            else if (grace < preStop + shutdown + margin) reportViolation(`container '${c.name ?? "?"}': a grace period of ${grace} s does not cover preStop ${preStop} s + shutdown ${shutdown} s + ${margin} s`, r.urn);
        }
    },
};

export const WORKLOAD_POLICIES = [
    pinnedImages, httpProbes, pdbNeverBlocksDrains, noServiceAccountToken, zeroDowntimeRollouts, requestsAndLimits, noHostPorts,
    minReplicas, restrictedPodSecurity, probeTimeouts, gracefulShutdown,
];
