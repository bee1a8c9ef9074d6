// Tests of the NetworkPolicy evaluator itself: each case is a behaviour the Kubernetes docs state.
// "Docs" = https://kubernetes.io/docs/concepts/services-networking/network-policies/ ;
// "API" = the NetworkPolicySpec / NetworkPolicyPeer / NetworkPolicyPort API reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
    type EvaluatorOptions, type Flow, type Namespace, type NetworkPolicy, type Pod,
    NetworkPolicyEvaluator, selectorMatches,
} from "./support/netpol";

const namespaces: Namespace[] = [
    { name: "api", labels: { team: "web" } },
    { name: "db", labels: {} },
    { name: "alice", labels: { user: "alice" } },
    { name: "other", labels: {} },
];

function pod(namespace: string, name: string, labels: Record<string, string> = {}, extra: Partial<Pod> = {}): Pod {
    return { name, namespace, labels, ...extra };
}

function policy(namespace: string, name: string, spec: NetworkPolicy["spec"]): NetworkPolicy {
    return { metadata: { name, namespace }, spec };
}

function verdict(policies: NetworkPolicy[], flow: Flow, options: EvaluatorOptions = {}): boolean {
    return new NetworkPolicyEvaluator(policies, namespaces, options).evaluate(flow).allowed;
}

const api = pod("api", "api-xyz", { app: "api" }, { ip: "10.42.0.5" });
const db = pod("db", "pg-0", { app: "postgres" }, { ip: "10.42.1.7" });
const client = pod("alice", "client-1", { role: "client" });
const otherClient = pod("other", "client-2", { role: "client" });
const aliceServer = pod("alice", "server", { role: "server" });
const localClient = pod("other", "client-3", { role: "client" });
const otherServer = pod("other", "server", { role: "server" });

const defaultDenyIngress = policy("db", "default-deny", { podSelector: {}, policyTypes: ["Ingress"] });

// Docs, "The two sorts of pod isolation": "By default, a pod is non-isolated for egress ... for ingress".
test("no policy: everything is allowed", () => {
    assert.equal(verdict([], { from: { pod: api }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict([], { from: { pod: api }, to: { ip: "169.254.169.254" }, port: 80 }), true);
});

// Docs, "Default deny all ingress traffic": it isolates every pod for ingress and does not affect egress.
test("default-deny ingress denies ingress but not the namespace's egress", () => {
    assert.equal(verdict([defaultDenyIngress], { from: { pod: api }, to: { pod: db }, port: 5432 }), false);
    assert.equal(verdict([defaultDenyIngress], { from: { pod: db }, to: { pod: api }, port: 8080 }), true);
    assert.equal(verdict([defaultDenyIngress], { from: { pod: db }, to: { ip: "1.1.1.1" }, port: 443 }), true);
});

// Docs, "The two sorts of pod isolation": "Network policies do not conflict; they are additive".
test("policies are additive: the union of their rules is allowed", () => {
    const fromApi = policy("db", "from-api", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "web" } } }] }] });
    const fromAlice = policy("db", "from-alice", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { user: "alice" } } }] }] });
    const all = [defaultDenyIngress, fromApi, fromAlice];
    assert.equal(verdict(all, { from: { pod: api }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict(all, { from: { pod: client }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict(all, { from: { pod: otherClient }, to: { pod: db }, port: 5432 }), false);
});

// Docs, "Behavior of to and from selectors": podSelector "selects particular Pods in the same namespace
// as the NetworkPolicy".
test("a podSelector-only peer is local to the policy's namespace", () => {
    const p = policy("alice", "clients", { podSelector: { matchLabels: { role: "server" } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }] }] });
    assert.equal(verdict([p], { from: { pod: client }, to: { pod: aliceServer }, port: 80 }), true);
    assert.equal(verdict([p], { from: { pod: otherClient }, to: { pod: aliceServer }, port: 80 }), false);
});

// Docs, "Behavior of to and from selectors": one entry with both selectors selects pods matching podSelector
// within namespaces matching namespaceSelector; two entries allow either. (The docs' user=alice example.)
test("namespaceSelector and podSelector: one peer is AND, two peers are OR", () => {
    const nsSelector = { matchLabels: { user: "alice" } };
    const podSelector = { matchLabels: { role: "client" } };
    const and = policy("other", "and", { podSelector: { matchLabels: { role: "server" } }, ingress: [{ from: [{ namespaceSelector: nsSelector, podSelector }] }] });
    const or = policy("other", "or", { podSelector: { matchLabels: { role: "server" } }, ingress: [{ from: [{ namespaceSelector: nsSelector }, { podSelector }] }] });
    const aliceOther = pod("alice", "not-a-client", { role: "db" });
    const to = { pod: otherServer };
    assert.equal(verdict([and], { from: { pod: client }, to, port: 80 }), true);
    assert.equal(verdict([and], { from: { pod: aliceOther }, to, port: 80 }), false);
    assert.equal(verdict([and], { from: { pod: localClient }, to, port: 80 }), false);
    assert.equal(verdict([or], { from: { pod: aliceOther }, to, port: 80 }), true);
    assert.equal(verdict([or], { from: { pod: localClient }, to, port: 80 }), true);
    assert.equal(verdict([or], { from: { pod: api }, to, port: 80 }), false);
});

// Docs, "Targeting a Namespace by its name": the control plane sets kubernetes.io/metadata.name on namespaces.
test("namespaces carry kubernetes.io/metadata.name", () => {
    const p = policy("db", "from-api-ns", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "api" } } }] }] });
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict([p], { from: { pod: client }, to: { pod: db }, port: 5432 }), false);
});

// Docs, ipBlock under "Behavior of to and from selectors", and API IPBlock: "The except entry describes
// CIDRs that should not be included within this rule".
test("ipBlock with except: egress to all but the metadata address", () => {
    const p = policy("api", "deny-cloud-metadata", {
        podSelector: {}, policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["169.254.169.254/32"] } }, { ipBlock: { cidr: "::/0" } }] }],
    });
    const evaluator = new NetworkPolicyEvaluator([p], namespaces);
    const metadata = evaluator.evaluate({ from: { pod: api }, to: { ip: "169.254.169.254" }, port: 80 });
    assert.equal(metadata.allowed, false);
    assert.equal(metadata.reason, "egress from api/api-xyz isolated by api/deny-cloud-metadata, no rule admits 169.254.169.254:80/TCP");
    assert.equal(evaluator.evaluate({ from: { pod: api }, to: { ip: "1.1.1.1" }, port: 443 }).allowed, true);
    assert.equal(evaluator.evaluate({ from: { pod: api }, to: { ip: "169.254.169.253" }, port: 80 }).allowed, true);
    assert.equal(evaluator.evaluate({ from: { pod: api }, to: { ip: "2606:4700:4700::1111" }, port: 443 }).allowed, true);
    // IPv6 CIDRs ("2001:db8::/64" in the API doc), and no mixing of families.
    const v6 = policy("api", "v6", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "2001:db8::/32", except: ["2001:db8:0:1::/64"] } }] }] });
    assert.equal(verdict([v6], { from: { pod: api }, to: { ip: "2001:db8:0:2::1" }, port: 443 }), true);
    assert.equal(verdict([v6], { from: { pod: api }, to: { ip: "2001:db8:0:1:ffff::1" }, port: 443 }), false);
    assert.equal(verdict([v6], { from: { pod: api }, to: { ip: "2001:db9::" }, port: 443 }), false);
    assert.equal(verdict([v6], { from: { pod: api }, to: { ip: "32.1.13.184" }, port: 443 }), false); // 0x20010db8 as IPv4
    // The docs' own example: 172.17.0.0/16 except 172.17.1.0/24.
    const ingress = policy("db", "ranges", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "172.17.0.0/16", except: ["172.17.1.0/24"] } }] }] });
    assert.equal(verdict([ingress], { from: { ip: "172.17.0.9" }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict([ingress], { from: { ip: "172.17.1.9" }, to: { pod: db }, port: 5432 }), false);
    assert.equal(verdict([ingress], { from: { ip: "172.18.0.1" }, to: { pod: db }, port: 5432 }), false);
});

// Docs, ipBlock: "These should be cluster-external IPs, since Pod IPs are ephemeral and unpredictable";
// whether a plugin matches pod IPs is not defined, so that is an explicit option.
test("ipBlock does not match pod-network pods unless asked to", () => {
    const p = policy("api", "cidr-only", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.42.0.0/16" } }] }] });
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 5432 }), false);
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 5432 }, { ipBlockMatchesPodIPs: true }), true);
});

// API NetworkPolicyIngressRule/EgressRule.ports: "If this field is empty or missing, this rule matches all
// ports"; from/to: "If this field is empty or missing, this rule matches all sources".
test("absent or empty ports match every port; absent or empty from matches every source", () => {
    const p = policy("db", "from-api", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "web" } } }] }] });
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 1, protocol: "UDP" }), true);
    const anyone = policy("db", "anyone-5432", { podSelector: {}, ingress: [{ ports: [{ port: 5432 }] }] });
    assert.equal(verdict([anyone], { from: { ip: "203.0.113.9" }, to: { pod: db }, port: 5432 }), true);
    assert.equal(verdict([anyone], { from: { pod: client }, to: { pod: db }, port: 5433 }), false);
    const emptyLists = policy("db", "empty-lists", { podSelector: {}, ingress: [{ from: [], ports: [] }] });
    assert.equal(verdict([emptyLists], { from: { ip: "203.0.113.9" }, to: { pod: db }, port: 9, protocol: "SCTP" }), true);
});

// API NetworkPolicyPort.port: "This can either be a numerical or named port on a pod".
test("a named port matches the destination pod's declared port", () => {
    const named = pod("db", "pg-1", { app: "postgres" }, { ports: [{ name: "postgres", containerPort: 5432 }] });
    const p = policy("db", "named", { podSelector: {}, ingress: [{ ports: [{ port: "postgres" }] }] });
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: named }, port: 5432 }), true);
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: named }, port: 5433 }), false);
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: db }, port: 5432 }), false); // pg-0 declares no name
    assert.throws(() => new NetworkPolicyEvaluator([policy("db", "quoted", { podSelector: {}, ingress: [{ ports: [{ port: "5432" }] }] })], namespaces));
});

// Docs, "Targeting a range of ports": endPort makes port..endPort (inclusive) one rule.
test("endPort matches an inclusive range", () => {
    const p = policy("api", "range", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/24" } }], ports: [{ protocol: "TCP", port: 32000, endPort: 32768 }] }] });
    for (const [port, allowed] of [[31999, false], [32000, true], [32500, true], [32768, true], [32769, false]] as const) {
        assert.equal(verdict([p], { from: { pod: api }, to: { ip: "10.0.0.7" }, port }), allowed, `port ${port}`);
    }
    assert.throws(() => new NetworkPolicyEvaluator([policy("api", "bad", { podSelector: {}, ingress: [{ ports: [{ port: 90, endPort: 80 }] }] })], namespaces));
});

// Docs, "The two sorts of pod isolation": the two isolations are "declared independently", and a connection
// needs both "the egress policy on the source pod and the ingress policy on the destination pod".
test("egress and ingress isolation are independent, and a flow needs both", () => {
    const denyEgress = policy("api", "deny-egress", { podSelector: {}, policyTypes: ["Egress"] });
    assert.equal(verdict([denyEgress], { from: { pod: api }, to: { pod: db }, port: 5432 }), false);
    assert.equal(verdict([denyEgress], { from: { pod: db }, to: { pod: api }, port: 8080 }), true); // api's ingress untouched
    const allowEgress = policy("api", "to-db", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {} }] }] });
    const flow = { from: { pod: api }, to: { pod: db }, port: 5432 };
    assert.equal(verdict([allowEgress, defaultDenyIngress], flow), false); // egress allows, ingress does not
    const dbFromApi = policy("db", "from-api", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "web" } } }] }] });
    assert.equal(verdict([denyEgress, dbFromApi], flow), false); // ingress allows, egress does not
    assert.equal(verdict([allowEgress, defaultDenyIngress, dbFromApi], flow), true);
});

// API NetworkPolicySpec.policyTypes: without it, "policies that contain an egress section are assumed to
// affect egress, and all policies ... are assumed to affect ingress"; an egress-only or deny-all-egress
// policy must list "Egress" explicitly.
test("policyTypes defaults from the presence of egress rules", () => {
    const withEgress = policy("api", "egress-rules", { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "1.1.1.1/32" } }] }] });
    assert.equal(verdict([withEgress], { from: { pod: api }, to: { ip: "8.8.8.8" }, port: 53, protocol: "UDP" }), false);
    assert.equal(verdict([withEgress], { from: { pod: db }, to: { pod: api }, port: 8080 }), false); // also isolates ingress
    const emptyEgress = policy("api", "empty-egress", { podSelector: {}, egress: [] });
    assert.equal(verdict([emptyEgress], { from: { pod: api }, to: { ip: "8.8.8.8" }, port: 53, protocol: "UDP" }), true);
    assert.equal(verdict([emptyEgress], { from: { pod: db }, to: { pod: api }, port: 8080 }), false);
});

// API NetworkPolicyPort.protocol: "If not specified, this field defaults to TCP"; a port rule matches only
// "the specified protocol AND port". DNS needs 53/UDP (and 53/TCP for large answers).
test("protocols: UDP and TCP are distinct and TCP is the default", () => {
    const dns = pod("other", "coredns-1", { "k8s-app": "kube-dns" });
    const p = policy("api", "dns", {
        podSelector: {}, policyTypes: ["Egress"],
        egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }], ports: [{ port: 53, protocol: "UDP" }] }],
    });
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: dns }, port: 53, protocol: "UDP" }), true);
    assert.equal(verdict([p], { from: { pod: api }, to: { pod: dns }, port: 53 }), false);
    const tcp = policy("api", "dns-tcp", { podSelector: {}, policyTypes: ["Egress"], egress: [{ ports: [{ port: 53 }] }] });
    assert.equal(verdict([tcp], { from: { pod: api }, to: { pod: dns }, port: 53, protocol: "TCP" }), true);
    assert.equal(verdict([tcp], { from: { pod: api }, to: { pod: dns }, port: 53, protocol: "UDP" }), false);
});

// Docs, "NetworkPolicy and hostNetwork pods": in the most common implementation hostNetwork pods are ignored
// by podSelector/namespaceSelector and their traffic is node traffic, which an ipBlock can allow.
test("hostNetwork pods are not selectable and act as their node IP", () => {
    const agent = pod("other", "agent", { role: "client" }, { hostNetwork: true, ip: "10.0.1.2" });
    const bySelector = policy("db", "clients", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }] }] });
    assert.equal(verdict([bySelector], { from: { pod: agent }, to: { pod: db }, port: 5432 }), false);
    const byNodeIP = policy("db", "nodes", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.1.0/24" } }] }] });
    assert.equal(verdict([byNodeIP], { from: { pod: agent }, to: { pod: db }, port: 5432 }), true);
    // Policies in its namespace do not select it either.
    const denyAll = policy("other", "deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    assert.equal(verdict([denyAll], { from: { pod: agent }, to: { ip: "1.1.1.1" }, port: 443 }), true);
});

// Docs, overview: "a pod cannot block access to itself" and "traffic to and from the node where a Pod is
// running is always allowed".
test("a pod can always reach itself and be reached by its own node", () => {
    const onNode = { ...db, nodeIP: "10.0.1.3" };
    assert.equal(verdict([defaultDenyIngress], { from: { pod: onNode }, to: { pod: onNode }, port: 5432 }), true);
    assert.equal(verdict([defaultDenyIngress], { from: { ip: "10.0.1.3" }, to: { pod: onNode }, port: 5432 }), true);
    assert.equal(verdict([defaultDenyIngress], { from: { ip: "10.0.1.4" }, to: { pod: onNode }, port: 5432 }), false);
});

// Labels and Selectors docs, "Set-based requirement": notin also selects objects without the key; exists
// and !key test presence only; matchLabels and matchExpressions are ANDed.
test("selectorMatches implements the set-based operators", () => {
    const labels = { tier: "frontend", env: "prod" };
    assert.equal(selectorMatches(undefined, labels), true);
    assert.equal(selectorMatches({}, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "tier", operator: "In", values: ["frontend", "backend"] }] }, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "team", operator: "In", values: ["a"] }] }, labels), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["frontend"] }] }, labels), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "team", operator: "NotIn", values: ["a"] }] }, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "env", operator: "Exists" }] }, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, labels), false);
    assert.equal(selectorMatches({ matchLabels: { env: "prod" }, matchExpressions: [{ key: "tier", operator: "In", values: ["backend"] }] }, labels), false);
    assert.throws(() => selectorMatches({ matchExpressions: [{ key: "env", operator: "Equals", values: ["prod"] }] }, labels));
    assert.throws(() => selectorMatches({ matchExpressions: [{ key: "env", operator: "In" }] }, labels));
});

// API NetworkPolicyPeer: ipBlock "If this field is set then neither of the other fields can be"; the API
// server rejects an empty peer.
test("peers the API server would reject are rejected", () => {
    const build = (from: NetworkPolicy["spec"]["ingress"]) => () => new NetworkPolicyEvaluator([policy("db", "bad", { podSelector: {}, ingress: from })], namespaces);
    assert.throws(build([{ from: [{}] }]), /a peer must set/);
    assert.throws(build([{ from: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }] }]), /cannot be combined/);
    assert.throws(() => new NetworkPolicyEvaluator([policy("db", "typo", { podSelector: {}, policyTypes: ["ingress"] })], namespaces), /unknown policyType/);
});
