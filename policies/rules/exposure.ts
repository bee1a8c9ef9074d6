// Rules for what is reachable from outside.
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { namespaceOf, podTemplateOf } from "./pods";

/** A CIDR of prefix length 0 in any spelling (0.0.0.0/0, 10.0.0.0/00, ::/0, 0::0/0): the whole internet of its family. */
const isWholeInternet = (cidr: string) => /^[0-9a-fA-F.:]+\/0+$/.test(cidr.trim());
const ADMIN_PORTS = [22, 6443];

/** The ports a Hetzner firewall rule opens: "22", a range "1-65535", or "any" (or none) for every port of TCP/UDP. */
function opensPort(rule: { protocol?: string; port?: string }, port: number): boolean {
    if (rule.protocol !== "tcp") return false;
    const spec = String(rule.port ?? "any");
    if (spec === "any") return true;
    const [low, high = low] = spec.split("-").map(Number);
    return low <= port && port <= high;
}

export const noWorldOpenAdminPorts: ResourceValidationPolicy = {
    name: "no-world-open-admin-ports",
    description: "Hetzner firewalls never open SSH (22) or the Kubernetes API (6443) to the whole internet.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Allow only your networks: pulumi config set --path 'platform:adminCidrs[0]' <your office or VPN CIDR>.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/firewall:Firewall") return;
        const rules = (args.props.rules ?? []) as { direction?: string; protocol?: string; port?: string; sourceIps?: string[] }[];
        for (const rule of rules) {
            if (rule.direction !== "in" || !(rule.sourceIps ?? []).some(isWholeInternet)) continue;
            for (const port of ADMIN_PORTS.filter((p) => opensPort(rule, p))) reportViolation(`an inbound rule opens port ${port} to the whole internet`);
        }
    },
};

export const noLoadBalancerServices: ResourceValidationPolicy = {
    name: "no-load-balancer-services",
    description: "No Service is of type LoadBalancer or NodePort: the cloud controller's load balancers would outlive Pulumi.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Use a ClusterIP Service behind the ingress controller (an Ingress with a host); the Hetzner load balancer is a Pulumi resource (platform:loadBalancer).",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:core/v1:Service") return;
        const type = (args.props.spec as { type?: string } | undefined)?.type;
        if (type === "LoadBalancer" || type === "NodePort") reportViolation(`the Service is of type ${type}`);
    },
};

export const ingressTls: ResourceValidationPolicy = {
    name: "ingress-tls",
    description: "An Ingress that names a host serves it over TLS (advisory: a stack may run with tls off on purpose).",
    enforcementLevel: "advisory",
    severity: "medium",
    remediationSteps: "pulumi config set platform:tls letsencrypt (and platform:acmeEmail); the app's Ingress then gets a certificate.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:networking.k8s.io/v1:Ingress") return;
        const spec = (args.props.spec ?? {}) as { rules?: { host?: string }[]; tls?: { hosts?: string[] }[] };
        const covered = new Set((spec.tls ?? []).flatMap((t) => t.hosts ?? []));
        const bare = (spec.rules ?? []).filter((r) => r.host && !covered.has(r.host)).length;
        if (bare > 0) reportViolation(`${bare} host(s) are served without TLS`);
    },
};

interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: unknown[] }
interface Peer { namespaceSelector?: LabelSelector; podSelector?: LabelSelector; ipBlock?: { cidr?: string; except?: string[] } }
interface NetworkPolicySpec {
    podSelector?: LabelSelector;
    policyTypes?: string[];
    ingress?: { from?: Peer[] }[];
    egress?: { to?: Peer[] }[];
}

const isEmptySelector = (s: LabelSelector | undefined) => s !== undefined && Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;

/** The NetworkPolicies of the stack by namespace. */
function networkPolicies(resources: readonly PolicyResource[]): Map<string, NetworkPolicySpec[]> {
    const byNs = new Map<string, NetworkPolicySpec[]>();
    for (const r of resources.filter((x) => x.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy")) {
        const ns = namespaceOf(r.props);
        byNs.set(ns, [...(byNs.get(ns) ?? []), (r.props.spec ?? {}) as NetworkPolicySpec]);
    }
    return byNs;
}

/** Does a policy of this type select every pod of its namespace (podSelector {})? Then the namespace is isolated for that direction. */
/** policyTypes, or what the API server defaults them to: Ingress, and Egress when there are egress rules. */
const typesOf = (p: NetworkPolicySpec) => p.policyTypes ?? (p.egress ? ["Ingress", "Egress"] : ["Ingress"]);

const isolatesAll = (p: NetworkPolicySpec, type: "Ingress" | "Egress") => isEmptySelector(p.podSelector) && typesOf(p).includes(type);

const DEFAULT_CONTROLLER = { namespace: "kube-system", name: "traefik" };

export const namespaceIsolation: StackValidationPolicy = {
    name: "namespace-isolation",
    description: "Every namespace that serves an Ingress isolates all its pods and admits traffic only from the ingress controller, so a compromised pod elsewhere cannot call the app directly.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Give the namespace a NetworkPolicy with podSelector {} and policyTypes [Ingress] whose only peers are the ingress controller (namespace kube-system, pods app.kubernetes.io/name=traefik); the platform's App component renders it (allow-ingress-controller).",
    configSchema: {
        properties: {
            controllerNamespace: { type: "string", default: DEFAULT_CONTROLLER.namespace, description: "Namespace of the ingress controller." },
            controllerName: { type: "string", default: DEFAULT_CONTROLLER.name, description: "app.kubernetes.io/name of the ingress controller's pods." },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = args.getConfig<{ controllerNamespace?: string; controllerName?: string }>();
        const controllerNs = cfg.controllerNamespace ?? DEFAULT_CONTROLLER.namespace;
        const controllerName = cfg.controllerName ?? DEFAULT_CONTROLLER.name;
        const isController = (peer: Peer) =>
            peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === controllerNs
            && peer.podSelector?.matchLabels?.["app.kubernetes.io/name"] === controllerName
            && peer.ipBlock === undefined;
        const policies = networkPolicies(args.resources);
        for (const ingress of args.resources.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:Ingress")) {
            const ns = namespaceOf(ingress.props);
            const inNs = policies.get(ns) ?? [];
            if (!inNs.some((p) => isolatesAll(p, "Ingress"))) reportViolation(`the namespace of this Ingress has no NetworkPolicy that isolates all its pods`, ingress.urn);
            const open = inNs.flatMap((p) => p.ingress ?? []).filter((rule) => (rule.from ?? []).length === 0 || !(rule.from ?? []).every(isController)).length;
            if (open > 0) reportViolation(`${open} ingress rule(s) in the namespace of this Ingress admit traffic from other than the ingress controller`, ingress.urn);
        }
    },
};

export const METADATA_IP = "169.254.169.254";

/** Does an IPv4 CIDR contain an IPv4 address? Other forms (IPv6) never contain the IPv4 metadata address. */
function cidrContains(cidr: string, address: string): boolean {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    if (!m || Number(m[5]) > 32) return false;
    const toInt = (parts: string[]) => parts.reduce((n, p) => n * 256 + Number(p), 0);
    const block = 2 ** (32 - Number(m[5]));
    return Math.floor(toInt(m.slice(1, 5)) / block) === Math.floor(toInt(address.split(".")) / block);
}

/** Does an egress peer let pods reach the metadata address? Selector peers match pods, never it. */
const reachesMetadata = (peer: Peer) =>
    peer.ipBlock !== undefined && cidrContains(peer.ipBlock.cidr ?? "", METADATA_IP)
    && !(peer.ipBlock.except ?? []).some((e) => cidrContains(e, METADATA_IP));

export const blockCloudMetadata: StackValidationPolicy = {
    name: "block-cloud-metadata",
    description: "In every namespace the stack creates and runs pods in, egress to the cloud metadata service (169.254.169.254) is blocked, since it hands any pod the server's user-data and identity.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Add a NetworkPolicy with podSelector {} and policyTypes [Egress] whose ipBlock rules except 169.254.169.254/32 (the platform's deny-cloud-metadata), and no egress rule that allows all destinations.",
    validateStack: (args, reportViolation) => {
        const policies = networkPolicies(args.resources);
        const withPods = new Set(args.resources.filter((r) => podTemplateOf(r.type, r.props) !== undefined).map((r) => namespaceOf(r.props)));
        for (const ns of args.resources.filter((r) => r.type === "kubernetes:core/v1:Namespace")) {
            const name = (ns.props.metadata as { name?: string } | undefined)?.name ?? "";
            if (!withPods.has(name)) continue;
            const inNs = policies.get(name) ?? [];
            if (!inNs.some((p) => isolatesAll(p, "Egress"))) {
                reportViolation("the namespace has no NetworkPolicy that restricts egress of all its pods", ns.urn);
                continue;
            }
            const rules = inNs.filter((p) => typesOf(p).includes("Egress")).flatMap((p) => p.egress ?? []);
            if (rules.some((rule) => rule.to === undefined || rule.to.length === 0 || rule.to.some(reachesMetadata))) {
                reportViolation("an egress rule in the namespace lets pods reach the metadata service", ns.urn);
            }
        }
    },
};

export const EXPOSURE_POLICIES = [noWorldOpenAdminPorts, noLoadBalancerServices, ingressTls, namespaceIsolation, blockCloudMetadata];
