// Evaluates Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, so tests can check rendered
// policies against a table of flows instead of reasoning about selectors by eye.
//
// Sources: https://kubernetes.io/docs/concepts/services-networking/network-policies/ and the API
// reference of NetworkPolicySpec / NetworkPolicyPeer / NetworkPolicyPort (k8s.io/api networking/v1).
//
// Where Kubernetes leaves behaviour to the network plugin, the evaluator keeps to what the docs state:
// - ipBlock vs pod IPs: ipBlocks "should be cluster-external IPs, since Pod IPs are ephemeral and
//   unpredictable", and plugins differ on whether a pod-to-pod flow is matched against ipBlock (some
//   compare pod IPs, some identify in-cluster peers by labels only). By default an ipBlock never
//   matches a pod-network pod, so no verdict depends on that choice; `ipBlockMatchesPodIPs: true`
//   models the plugins that do compare pod IPs (the Pod must then have `ip`).
// - hostNetwork pods: the docs' "most common implementation": they are never selected (by
//   spec.podSelector nor by a peer's pod/namespace selectors) and their traffic is node traffic. So a
//   hostNetwork pod is treated as the IP endpoint of its node (`ip`), which only ipBlock can match.
// - "traffic to and from the node where a Pod is running is always allowed": modelled via Pod.nodeIP.
// - "a pod cannot block access to itself".
// Not modelled: Service IPs and DNAT (give flows the backend pod), reply traffic (implicitly allowed).
import { isIPv4, isIPv6 } from "node:net";

export interface LabelSelectorRequirement { key: string; operator: string; values?: string[] }
export interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }
export interface IPBlock { cidr: string; except?: string[] }
export interface NetworkPolicyPeer { podSelector?: LabelSelector; namespaceSelector?: LabelSelector; ipBlock?: IPBlock }
export interface NetworkPolicyPort { protocol?: string; port?: number | string; endPort?: number }
export interface NetworkPolicyIngressRule { from?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }
export interface NetworkPolicyEgressRule { to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }
export interface NetworkPolicy {
    metadata: { name: string; namespace?: string };
    spec: {
        podSelector?: LabelSelector;
        policyTypes?: string[];
        ingress?: NetworkPolicyIngressRule[];
        egress?: NetworkPolicyEgressRule[];
    };
}

export type Protocol = "TCP" | "UDP" | "SCTP";
/** The evaluator adds the kubernetes.io/metadata.name label the control plane sets on every namespace. */
export interface Namespace { name: string; labels: Record<string, string> }
export interface ContainerPort { name: string; containerPort: number; protocol?: string }
/** `ip` is the pod IP (the node IP for hostNetwork pods); `nodeIP` the IP of the node it runs on. */
export interface Pod {
    name: string; namespace: string; labels: Record<string, string>;
    ip?: string; hostNetwork?: boolean; nodeIP?: string; ports?: ContainerPort[];
}
/** `ip`: an address outside the pod network (e.g. 169.254.169.254, a node IP). */
export type Endpoint = { pod: Pod } | { ip: string };
export interface Flow { from: Endpoint; to: Endpoint; port: number; protocol?: Protocol }
export interface Verdict { allowed: boolean; reason: string }
export interface EvaluatorOptions { ipBlockMatchesPodIPs?: boolean }

type Direction = "Ingress" | "Egress";
interface Rule { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }
// A flow endpoint after the hostNetwork rewrite: a selectable pod, or a bare address (maybe unknown).
type Side = { kind: "pod"; pod: Pod; label: string } | { kind: "host"; ip?: string; label: string };

/** An absent selector is the empty selector, which matches everything (the spec's podSelector defaults
 * to it); peers give an absent namespaceSelector its own meaning before calling this. */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
    if (!selector) return true;
    const labelsMatch = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
    return labelsMatch && (selector.matchExpressions ?? []).every((requirement) => requirementMatches(requirement, labels));
}

function requirementMatches({ key, operator, values = [] }: LabelSelectorRequirement, labels: Record<string, string>): boolean {
    const has = Object.hasOwn(labels, key);
    // The API server rejects In/NotIn without values and Exists/DoesNotExist with values.
    const needsValues = operator === "In" || operator === "NotIn";
    if (needsValues !== values.length > 0) throw new Error(`label selector ${key} ${operator}: ${needsValues ? "needs" : "takes no"} values`);
    switch (operator) {
        case "In": return has && values.includes(labels[key]);
        case "NotIn": return !has || !values.includes(labels[key]); // NotIn also selects objects without the key
        case "Exists": return has;
        case "DoesNotExist": return !has;
        default: throw new Error(`unknown label selector operator ${operator}`);
    }
}

interface Address { v6: boolean; value: bigint }

function parseIP(text: string): Address {
    if (isIPv4(text)) return { v6: false, value: text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n) };
    if (!isIPv6(text)) throw new Error(`not an IP address: ${text}`);
    let hex = text;
    const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(hex); // e.g. ::ffff:192.0.2.1
    if (v4Tail) {
        const v4 = parseIP(v4Tail[1]).value;
        hex = `${hex.slice(0, -v4Tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
    }
    const [head, tail] = hex.split("::");
    const headGroups = head ? head.split(":") : [];
    const tailGroups = tail ? tail.split(":") : [];
    const zeros = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill("0");
    const groups = [...headGroups, ...zeros, ...tailGroups];
    return { v6: true, value: groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n) };
}

function inCidr(cidr: string, address: Address): boolean {
    const [base, lengthText] = cidr.split("/");
    const network = parseIP(base);
    const bits = network.v6 ? 128 : 32;
    const length = lengthText === undefined ? bits : Number(lengthText);
    if (!Number.isInteger(length) || length < 0 || length > bits) throw new Error(`bad CIDR ${cidr}`);
    // Families never mix: 0.0.0.0/0 does not cover IPv6 addresses, nor ::/0 IPv4 ones.
    if (network.v6 !== address.v6) return false;
    const shift = BigInt(bits - length);
    return network.value >> shift === address.value >> shift;
}

// policyTypes defaulting (SetDefaults_NetworkPolicy): when empty, "Ingress" always, plus "Egress" only
// if len(spec.egress) != 0. So `egress: []` counts as no egress section, which matches the doc ("a
// policy that specifies that no egress is allowed ... would not include an egress section") and the
// wire format (egress is omitempty, so an empty list does not survive a trip through the API server).
function policyTypes(policy: NetworkPolicy): string[] {
    const { policyTypes: types, egress } = policy.spec;
    if (types && types.length > 0) return types;
    return egress && egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
}

function rulesOf(policy: NetworkPolicy, direction: Direction): Rule[] {
    return direction === "Ingress"
        ? (policy.spec.ingress ?? []).map((rule) => ({ peers: rule.from, ports: rule.ports }))
        : (policy.spec.egress ?? []).map((rule) => ({ peers: rule.to, ports: rule.ports }));
}

const policyId = (policy: NetworkPolicy): string => `${policy.metadata.namespace}/${policy.metadata.name}`;

// Rejects what the API server would reject, so a broken rendering fails loudly instead of evaluating.
function validate(policy: NetworkPolicy): void {
    const id = policyId(policy);
    if (!policy.metadata.namespace) throw new Error(`NetworkPolicy ${policy.metadata.name} has no metadata.namespace`);
    for (const type of policy.spec.policyTypes ?? []) {
        if (type !== "Ingress" && type !== "Egress") throw new Error(`${id}: unknown policyType ${type}`);
    }
    for (const rule of [...rulesOf(policy, "Ingress"), ...rulesOf(policy, "Egress")]) {
        for (const peer of rule.peers ?? []) {
            if (!peer.podSelector && !peer.namespaceSelector && !peer.ipBlock) throw new Error(`${id}: a peer must set a selector or an ipBlock`);
            if (peer.ipBlock && (peer.podSelector || peer.namespaceSelector)) throw new Error(`${id}: ipBlock cannot be combined with selectors`);
        }
        for (const port of rule.ports ?? []) {
            if (port.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(port.protocol)) throw new Error(`${id}: unknown protocol ${port.protocol}`);
            // A string port is always a name (IANA_SVC_NAME, at least one letter): "80" is not port 80.
            if (typeof port.port === "string" && !/[a-z]/.test(port.port)) throw new Error(`${id}: named port "${port.port}" has no letter`);
            if (port.endPort !== undefined && (typeof port.port !== "number" || port.endPort < port.port)) {
                throw new Error(`${id}: endPort needs a numeric port no greater than it`);
            }
        }
    }
}

export class NetworkPolicyEvaluator {
    private readonly namespaceLabels = new Map<string, Record<string, string>>();

    constructor(private readonly policies: NetworkPolicy[], namespaces: Namespace[], private readonly options: EvaluatorOptions = {}) {
        policies.forEach(validate);
        for (const { name, labels } of namespaces) {
            const own = labels["kubernetes.io/metadata.name"];
            if (own !== undefined && own !== name) throw new Error(`namespace ${name} has kubernetes.io/metadata.name=${own}`);
            this.namespaceLabels.set(name, { ...labels, "kubernetes.io/metadata.name": name });
        }
    }

    evaluate(flow: Flow): Verdict {
        const protocol = flow.protocol ?? "TCP";
        const source = this.side(flow.from);
        const destination = this.side(flow.to);
        if (source.kind === "pod" && destination.kind === "pod" && source.label === destination.label) {
            return { allowed: true, reason: `${source.label} to itself: a pod cannot block access to itself` };
        }
        const egress = source.kind === "pod"
            ? this.check("Egress", source.pod, destination, destination, flow.port, protocol)
            : { allowed: true, reason: `egress from ${source.label}: not a pod-network pod, no policy applies` };
        const ingress = destination.kind === "pod"
            ? this.check("Ingress", destination.pod, source, destination, flow.port, protocol)
            : { allowed: true, reason: `ingress to ${destination.label}: not a pod-network pod, no policy applies` };
        if (!egress.allowed) return egress;
        if (!ingress.allowed) return ingress;
        return { allowed: true, reason: `${egress.reason}; ${ingress.reason}` };
    }

    private side(endpoint: Endpoint): Side {
        if (!("pod" in endpoint)) {
            parseIP(endpoint.ip);
            return { kind: "host", ip: endpoint.ip, label: endpoint.ip };
        }
        const { pod } = endpoint;
        if (!this.namespaceLabels.has(pod.namespace)) throw new Error(`pod ${pod.name}: unknown namespace ${pod.namespace}`);
        const label = `${pod.namespace}/${pod.name}`;
        if (pod.hostNetwork) return { kind: "host", ip: pod.ip, label: `${label} (hostNetwork, node IP ${pod.ip ?? "unknown"})` };
        return { kind: "pod", pod, label };
    }

    // Whether `pod`'s policies for `direction` admit traffic with `peer` on the destination's port.
    private check(direction: Direction, pod: Pod, peer: Side, destination: Side, port: number, protocol: Protocol): Verdict {
        const who = direction === "Ingress" ? `ingress to ${pod.namespace}/${pod.name}` : `egress from ${pod.namespace}/${pod.name}`;
        if (peer.kind === "host" && peer.ip !== undefined && peer.ip === pod.nodeIP) {
            return { allowed: true, reason: `${who}: traffic with the pod's own node is always allowed` };
        }
        const applying = this.policies.filter((policy) => policy.metadata.namespace === pod.namespace
            && selectorMatches(policy.spec.podSelector, pod.labels) && policyTypes(policy).includes(direction));
        if (applying.length === 0) return { allowed: true, reason: `${who}: not isolated` };
        // Policies are additive: any rule of any applying policy admits the flow.
        for (const policy of applying) {
            const index = rulesOf(policy, direction).findIndex((rule) =>
                this.peersMatch(rule.peers, policy.metadata.namespace ?? "", peer) && portsMatch(rule.ports, destination, port, protocol));
            if (index >= 0) return { allowed: true, reason: `${who}: admitted by ${policyId(policy)} ${direction.toLowerCase()}[${index}]` };
        }
        const target = direction === "Egress" ? `${peer.label}:${port}/${protocol}` : `${peer.label} on ${port}/${protocol}`;
        return { allowed: false, reason: `${who} isolated by ${applying.map(policyId).join(", ")}, no rule admits ${target}` };
    }

    // An absent or empty from/to list matches every peer, addresses included.
    private peersMatch(peers: NetworkPolicyPeer[] | undefined, policyNamespace: string, side: Side): boolean {
        if (!peers || peers.length === 0) return true;
        return peers.some((peer) => {
            if (peer.ipBlock) {
                const ip = side.kind === "host" ? side.ip : this.options.ipBlockMatchesPodIPs ? side.pod.ip : undefined;
                if (ip === undefined) return false;
                const address = parseIP(ip);
                return inCidr(peer.ipBlock.cidr, address) && !(peer.ipBlock.except ?? []).some((cidr) => inCidr(cidr, address));
            }
            if (side.kind !== "pod") return false; // selectors only ever select pod-network pods
            const namespaceMatches = peer.namespaceSelector
                ? selectorMatches(peer.namespaceSelector, this.namespaceLabels.get(side.pod.namespace) ?? {})
                : side.pod.namespace === policyNamespace; // podSelector alone: the policy's own namespace
            return namespaceMatches && selectorMatches(peer.podSelector, side.pod.labels);
        });
    }
}

// An absent or empty ports list matches every port; a port without `port` matches all of its protocol.
function portsMatch(ports: NetworkPolicyPort[] | undefined, destination: Side, port: number, protocol: Protocol): boolean {
    if (!ports || ports.length === 0) return true;
    return ports.some((entry) => {
        if ((entry.protocol ?? "TCP") !== protocol) return false;
        if (entry.port === undefined) return true;
        if (typeof entry.port === "number") return port >= entry.port && port <= (entry.endPort ?? entry.port);
        // A named port resolves on the destination pod, so only pod-network destinations can match it.
        return destination.kind === "pod" && (destination.pod.ports ?? []).some((declared) =>
            declared.name === entry.port && declared.containerPort === port && (declared.protocol ?? "TCP") === protocol);
    });
}
