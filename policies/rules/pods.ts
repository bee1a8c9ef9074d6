// Where pod templates sit in the workload kinds the platform renders, so rules
// about containers read them the same way whatever the kind.

export interface Container {
    readonly name?: string;
    readonly image?: string;
    readonly ports?: readonly { readonly hostPort?: number | null }[];
    readonly env?: readonly { readonly name: string; readonly value?: unknown }[];
    readonly resources?: { readonly requests?: Record<string, unknown>; readonly limits?: Record<string, unknown> };
    readonly readinessProbe?: unknown;
    readonly startupProbe?: unknown;
    readonly livenessProbe?: unknown;
}

export interface PodSpec {
    readonly containers?: readonly Container[];
    readonly initContainers?: readonly Container[];
}

type Props = Record<string, unknown>;

const get = (o: unknown, ...path: string[]): unknown =>
    path.reduce<unknown>((cur, key) => (typeof cur === "object" && cur !== null ? (cur as Props)[key] : undefined), o);

/** The pod spec of a Kubernetes workload's inputs, or undefined for other types. */
export function podSpecOf(type: string, props: Props): PodSpec | undefined {
    switch (type) {
        case "kubernetes:apps/v1:Deployment":
        case "kubernetes:apps/v1:StatefulSet":
        case "kubernetes:apps/v1:DaemonSet":
        case "kubernetes:batch/v1:Job":
            return get(props, "spec", "template", "spec") as PodSpec | undefined;
        case "kubernetes:batch/v1:CronJob":
            return get(props, "spec", "jobTemplate", "spec", "template", "spec") as PodSpec | undefined;
        case "kubernetes:core/v1:Pod":
            return get(props, "spec") as PodSpec | undefined;
        default:
            return undefined;
    }
}

/** Every container of a pod spec, init containers included. */
export function containersOf(pod: PodSpec): Container[] {
    return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}

/** Every container of a workload's pod template; none for other types. */
export function workloadContainers(type: string, props: Props): Container[] {
    const pod = podSpecOf(type, props);
    return pod ? containersOf(pod) : [];
}
