// Rules for workloads: what a rollout, a drain and a restart rely on.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { podSpecOf, workloadContainers } from "./pods";

/** A tag that names a release: not `latest`, not absent (which means latest). */
function isPinned(image: string): boolean {
    if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
    const lastSegment = image.slice(image.lastIndexOf("/") + 1);
    const colon = lastSegment.indexOf(":");
    return colon > 0 && lastSegment.slice(colon + 1) !== "latest";
}

export const pinnedImages: ResourceValidationPolicy = {
    name: "pinned-images",
    description: "Every container image is pinned to a release tag or a digest, never `latest` or no tag.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Set the image to a release tag (app:1.4.2) or a digest (app@sha256:...); the platform's apps.<name>.image refuses `latest` already.",
    validateResource: (args, reportViolation) => {
        for (const c of workloadContainers(args.type, args.props)) {
            if (typeof c.image === "string" && !isPinned(c.image)) {
                reportViolation(`container '${c.name ?? "?"}' has an image that is not pinned to a release tag or digest`);
            }
        }
    },
};

export const httpProbes: ResourceValidationPolicy = {
    name: "http-probes",
    description: "A Deployment container that serves a port has readiness and startup probes, so a rollout never sends traffic to a pod that is not ready.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Give the container a readinessProbe (the app's health path) and a startupProbe (its liveness path); the platform's App component sets both.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:apps/v1:Deployment") return;
        const pod = podSpecOf(args.type, args.props);
        for (const c of pod?.containers ?? []) {
            if ((c.ports?.length ?? 0) === 0) continue;
            const missing = [c.readinessProbe ? "" : "readinessProbe", c.startupProbe ? "" : "startupProbe"].filter(Boolean);
            if (missing.length > 0) reportViolation(`container '${c.name ?? "?"}' serves a port but has no ${missing.join(" and no ")}`);
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

export const WORKLOAD_POLICIES = [pinnedImages, httpProbes, pdbNeverBlocksDrains, noServiceAccountToken, zeroDowntimeRollouts, requestsAndLimits, noHostPorts];
