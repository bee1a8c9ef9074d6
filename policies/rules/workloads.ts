// Rules for workloads: what a rollout, a drain and a restart rely on.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { containersOf, podSpecOf } from "./pods";

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
        const pod = podSpecOf(args.type, args.props);
        if (!pod) return;
        for (const c of containersOf(pod)) {
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

export const WORKLOAD_POLICIES = [pinnedImages, httpProbes, pdbNeverBlocksDrains];
