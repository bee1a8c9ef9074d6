// The critical path of a first `pulumi up`: the longest chain of resources that
// must be created one after another (each waits for its dependencies, as the
// engine does), weighted by how long each typically takes. The weights are
// estimates, not measurements (no cloud here): what each rests on is said
// beside it. Pure: rendered resources in, the chain out.
import type { RenderedResource } from "./render";

interface Estimate {
    readonly seconds: number;
    readonly basis: string;
}

/** Typical seconds from create call to done, for what dominates a first `up`; anything else: 1 s. */
function estimate(r: RenderedResource): Estimate {
    const name = r.name;
    switch (r.type) {
        case "hcloud:index/server:Server":
            return { seconds: 30, basis: "Hetzner creates and boots a server in 20-40 s" };
        case "hcloud:index/loadBalancer:LoadBalancer":
            return { seconds: 10, basis: "a load balancer is ready in seconds" };
        case "command:remote:Command":
            if (name.endsWith("-bootstrap")) return { seconds: 90, basis: "SSH reachable, cloud-init done, k3s installed and its API up on the first server" };
            if (name.endsWith("-credential")) return { seconds: 5, basis: "one kubectl call over SSH" };
            return { seconds: 45, basis: "another node joins: k3s installed and started, etcd member or agent registered" };
        case "docker-build:index:Image":
            return { seconds: 120, basis: "build and push of the sample API (Node, multi-stage) on a CI runner" };
        case "kubernetes:helm.cattle.io/v1:HelmChart":
            return { seconds: 45, basis: "k3s's helm controller pulls and installs the chart (CCM, CSI)" };
        case "kubernetes:helm.sh/v3:Release":
            return { seconds: 60, basis: "Helm installs the chart and waits for its pods (cert-manager, CloudNativePG, the backup plugin)" };
        case "kubernetes:batch/v1:Job":
            if (name.includes("login-check")) return { seconds: 120, basis: "CloudNativePG initialises the primary and starts PgBouncer; the login works through the pooler" };
            if (name.includes("migrate")) return { seconds: 30, basis: "image pull and the app's migrations" };
            return { seconds: 20, basis: "a Job's pod pulls its image and runs (CRD wait, grants)" };
        case "kubernetes:apps/v1:Deployment":
            return { seconds: 40, basis: "pods pulled, started and Ready (readiness-gated rollout)" };
        default:
            return { seconds: 1, basis: "an API call" };
    }
}

export interface CriticalPath {
    readonly seconds: number;
    readonly chain: readonly { readonly name: string; readonly type: string; readonly seconds: number; readonly basis: string }[];
}

/** The longest chain by estimated time; resources waiting on nothing start at once. */
export function criticalPath(resources: readonly RenderedResource[]): CriticalPath {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const finish = new Map<string, { at: number; via?: string }>();
    const visit = (urn: string, stack: Set<string>): number => {
        const known = finish.get(urn);
        if (known) return known.at;
        const r = byUrn.get(urn);
        if (!r || stack.has(urn)) return 0;
        stack.add(urn);
        let start = 0;
        let via: string | undefined;
        for (const dep of [...(r.dependencies ?? []), ...(r.provider ? [r.provider] : [])]) {
            const at = visit(dep, stack);
            if (at > start) [start, via] = [at, dep];
        }
        stack.delete(urn);
        const at = start + estimate(r).seconds;
        finish.set(urn, { at, via });
        return at;
    };
    for (const r of resources) visit(r.urn, new Set());
    let end: string | undefined;
    for (const [urn, f] of finish) if (!end || f.at > (finish.get(end)?.at ?? 0)) end = urn;
    const chain: CriticalPath["chain"][number][] = [];
    for (let urn = end; urn; urn = finish.get(urn)?.via) {
        const r = byUrn.get(urn) as RenderedResource;
        const e = estimate(r);
        chain.unshift({ name: r.name, type: r.type, seconds: e.seconds, basis: e.basis });
    }
    return { seconds: end ? (finish.get(end)?.at ?? 0) : 0, chain };
}

export function describeCriticalPath(path: CriticalPath): string {
    const slow = path.chain.filter((s) => s.seconds > 1);
    return `Critical path of a first up: about ${Math.ceil(path.seconds / 60)} min (${path.seconds} s estimated), ${path.chain.length} steps; `
        + `the waits: ${slow.map((s) => `${s.name} ${s.seconds} s`).join(" -> ")}`;
}
