// Where pod templates sit in the workload kinds the platform renders, so rules
// about containers read them the same way whatever the kind.
import type { PolicyResource } from "@pulumi/policy";
import { type PodTemplateOf, type ProbeLike, podTemplatesOf } from "./pod-security";

export interface Container {
    readonly name?: string;
    readonly image?: string;
    readonly ports?: readonly { readonly hostPort?: number | null }[];
    readonly env?: readonly { readonly name: string; readonly value?: unknown }[];
    readonly envFrom?: readonly { readonly configMapRef?: { readonly name?: string } }[];
    readonly resources?: { readonly requests?: Record<string, unknown>; readonly limits?: Record<string, unknown> };
    readonly readinessProbe?: ProbeLike | null;
    readonly startupProbe?: ProbeLike | null;
    readonly livenessProbe?: ProbeLike | null;
    readonly lifecycle?: { readonly preStop?: { readonly sleep?: { readonly seconds?: number } } };
}

export interface PodSpec {
    readonly containers?: readonly Container[];
    readonly initContainers?: readonly Container[];
    readonly terminationGracePeriodSeconds?: number;
}

type Props = Record<string, unknown>;

/** The kind of a Kubernetes resource type token (`kubernetes:apps/v1:Deployment` -> `Deployment`), or undefined. */
export function kubernetesKind(type: string): string | undefined {
    return type.startsWith("kubernetes:") ? type.slice(type.lastIndexOf(":") + 1) : undefined;
}

/** The pod template of a Kubernetes workload's inputs (as Pod Security admission finds it), or undefined for other types. */
export function podTemplateOf(type: string, props: Props): PodTemplateOf | undefined {
    const kind = kubernetesKind(type);
    return kind ? podTemplatesOf({ ...props, kind })[0] : undefined;
}

/** The pod spec of a Kubernetes workload's inputs, or undefined for other types. */
export function podSpecOf(type: string, props: Props): PodSpec | undefined {
    return podTemplateOf(type, props)?.spec as PodSpec | undefined;
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

/** A ConfigMap of the stack as rules see it: namespace, name and data. */
export interface ConfigMapData {
    readonly namespace: string;
    readonly name: string;
    readonly data: Readonly<Record<string, unknown>>;
}

/** The ConfigMaps among a stack's resources. */
export function configMapsOf(resources: readonly PolicyResource[]): ConfigMapData[] {
    return resources
        .filter((r) => r.type === "kubernetes:core/v1:ConfigMap")
        .map((r) => ({ namespace: namespaceOf(r.props), name: String((r.props.metadata as { name?: string } | undefined)?.name ?? ""), data: (r.props.data ?? {}) as Record<string, unknown> }));
}

/** The namespace of a Kubernetes object's inputs ("default" when it names none, as the API server does). */
export function namespaceOf(props: Props): string {
    const ns = (props.metadata as { namespace?: unknown } | undefined)?.namespace;
    return typeof ns === "string" && ns !== "" ? ns : "default";
}

/**
 * The value a container sees for an environment variable: its literal env
 * entry, else the last envFrom ConfigMap of the namespace that has the key
 * (later sources win, as the kubelet merges them). Undefined when it comes
 * from a Secret or nowhere.
 */
export function envValue(c: Container, namespace: string, configMaps: readonly ConfigMapData[], name: string): string | undefined {
    const literal = (c.env ?? []).find((e) => e.name === name);
    if (literal) return typeof literal.value === "string" ? literal.value : undefined;
    let value: string | undefined;
    for (const source of c.envFrom ?? []) {
        const cm = configMaps.find((m) => m.namespace === namespace && m.name === source.configMapRef?.name);
        const v = cm?.data[name];
        if (typeof v === "string") value = v;
    }
    return value;
}

/** Seconds of a Go duration ("3s", "1m30s", "500ms"), or undefined when it is not one. */
export function goDurationSeconds(text: string): number | undefined {
    const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, "µs": 1e-6, ns: 1e-9 };
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) return undefined;
    return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
}
