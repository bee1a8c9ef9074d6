// The real program under Pulumi's mock runtime: what `pulumi up` would create
// for the committed stacks and for variations of their config.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { isSecretValue } from "../tools/mock-runtime";
import type { ConfigError } from "../components/config";
import { Render } from "../tools/render";
import { one, ofType, plain, render, secretInput, transitiveDependencies } from "./support/stack";

const SERVER = "hcloud:index/server:Server";

function userData(r: Render, serverName: string): string {
    return String(plain(one(r, SERVER, serverName).inputs.userData));
}

const APPLY = "command:remote:Command";

/** The k3s config a node gets over SSH (the stdin of its apply command). */
function k3sConfigOf(r: Render, nodeName: string, command = `${nodeName}-k3s-config`): Record<string, unknown> {
    return parse(String(secretInput(one(r, APPLY, command).inputs.stdin))) as Record<string, unknown>;
}

/** The arguments an apply command passes to k3s-apply-config.sh (its first line: `set -- ...`). */
function applyArgs(r: Render, command: string): string[] {
    const [first] = String(plain(one(r, APPLY, command).inputs.create)).split("\n");
    assert.match(first, /^set -- /);
    return first.slice("set -- ".length).split(" ");
}

/** The names of everything the resource `name` waits for, directly or through what it waits for. */
function waitsFor(r: Render, name: string): Set<string> {
    const start = r.run.resources.find((x) => x.name === name);
    assert.ok(start, name);
    return new Set([...transitiveDependencies(r, start)].map((urn) => urn.split("::").pop() as string));
}

describe("prod stack", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });

    it("creates 3 servers of type cx33 on Ubuntu 24.04 in one spread placement group", () => {
        const servers = ofType(prod, SERVER);
        assert.deepEqual(servers.map((s) => s.name), ["prod-server-1", "prod-server-2", "prod-server-3"]);
        for (const s of servers) {
            assert.equal(s.inputs.serverType, "cx33");
            assert.equal(s.inputs.image, "ubuntu-24.04");
        }
        const groups = ofType(prod, "hcloud:index/placementGroup:PlacementGroup");
        assert.deepEqual(groups.map((g) => g.inputs.type), ["spread"]);
        assert.equal(new Set(servers.map((s) => s.inputs.placementGroupId)).size, 1);
    });

    it("bootstraps etcd once, on the first server; every node joins whichever other server answers", () => {
        const bootstrap = one(prod, APPLY, "prod-bootstrap");
        assert.deepEqual(applyArgs(prod, "prod-bootstrap"), ["server", "prod-server-1", "10.0.1.11", "--cluster-init", "10.0.1.12", "10.0.1.13"]);
        // Runs once in the cluster's life: a replaced server-1 gets the steady config, which joins.
        for (const input of ["connection", "create", "stdin", "triggers"]) assert.ok(bootstrap.ignoreChanges.includes(input), input);
        assert.deepEqual(applyArgs(prod, "prod-server-1-k3s-config"), ["server", "prod-server-1", "10.0.1.11", "10.0.1.12", "10.0.1.13"]);
        assert.deepEqual(applyArgs(prod, "prod-server-2-k3s-config"), ["server", "prod-server-2", "10.0.1.12", "10.0.1.11", "10.0.1.13"]);
        assert.deepEqual(applyArgs(prod, "prod-server-3-k3s-config"), ["server", "prod-server-3", "10.0.1.13", "10.0.1.11", "10.0.1.12"]);
        assert.deepEqual(["prod-server-1", "prod-server-2", "prod-server-3"].map((n) => k3sConfigOf(prod, n)["node-ip"]), ["10.0.1.11", "10.0.1.12", "10.0.1.13"]);
        for (const n of ["prod-server-1", "prod-server-2", "prod-server-3"]) {
            const c = k3sConfigOf(prod, n);
            assert.equal(c["cluster-init"], undefined);
            assert.equal(c.server, undefined, "the node picks the server it joins");
        }
    });

    it("applies a config change one server at a time: the others first, server-1 last", () => {
        assert.ok(waitsFor(prod, "prod-server-2-k3s-config").has("prod-bootstrap"));
        assert.ok(waitsFor(prod, "prod-server-3-k3s-config").has("prod-server-2-k3s-config"));
        assert.ok(waitsFor(prod, "prod-server-1-k3s-config").has("prod-server-3-k3s-config"));
        assert.ok(!waitsFor(prod, "prod-server-2-k3s-config").has("prod-server-3-k3s-config"));
        for (const n of ["prod-server-1", "prod-server-2", "prod-server-3"]) {
            const apply = one(prod, APPLY, `${n}-k3s-config`);
            assert.equal(apply.inputs.logging, "stderr", "progress is logged, the config (stdin) never is");
            assert.ok(isSecretValue(apply.inputs.stdin), `${n}: the config with the tokens is secret`);
        }
    });

    it("lists every public and private API address in tls-san, and installs the pinned k3s at boot", () => {
        const ips = ofType(prod, "hcloud:index/primaryIp:PrimaryIp");
        assert.equal(ips.length, 3);
        const sans = k3sConfigOf(prod, "prod-server-1")["tls-san"] as string[];
        for (const ip of ["10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.5"]) assert.ok(sans.includes(ip), ip);
        const publicIps = (prod.run.outputs.servers as { publicIpv4: string }[]).map((x) => x.publicIpv4);
        for (const ip of publicIps) assert.ok(sans.includes(ip), ip);
        const ud = parse(userData(prod, "prod-server-1")) as { runcmd: string[][] };
        assert.deepEqual(ud.runcmd, [["/usr/local/sbin/node-prepare.sh", "v1.34.6+k3s1", "amd64"]]);
    });

    it("puts no secret in any user-data: every generated secret and secret setting is grepped for", () => {
        const r = prod;
        assert.ok(r.run.secretValues.size >= 5, "tokens, keys, passwords and placeholders are known to the render");
        for (const server of ofType(r, SERVER)) {
            assert.ok(!isSecretValue(server.inputs.userData), `${server.name}: user-data holds nothing to hide`);
            const text = userData(r, server.name);
            for (const secret of r.run.secretValues) assert.ok(!text.includes(secret), `${server.name} user-data holds a secret`);
        }
        // The tokens are where they belong: in the (secret) config each node gets over SSH.
        const server2 = k3sConfigOf(r, "prod-server-2");
        assert.ok(r.run.secretValues.has(String(server2.token)) && r.run.secretValues.has(String(server2["agent-token"])));
    });

    it("never replaces a running server for a user-data, image or SSH key edit", () => {
        for (const s of ofType(prod, SERVER)) {
            for (const field of ["userData", "image", "sshKeys"]) assert.ok(s.ignoreChanges.includes(field), `${s.name} ${field}`);
        }
    });

    it("opens 80/443 to the world and 22/6443 only to the admin networks", () => {
        const rules = plain(one(prod, "hcloud:index/firewall:Firewall").inputs.rules) as { port?: string; protocol: string; sourceIps: string[] }[];
        const byPort = new Map(rules.map((r) => [r.port ?? r.protocol, r.sourceIps]));
        assert.deepEqual(byPort.get("80"), ["0.0.0.0/0", "::/0"]);
        assert.deepEqual(byPort.get("443"), ["0.0.0.0/0", "::/0"]);
        assert.deepEqual(byPort.get("22"), ["203.0.113.0/24"]);
        assert.deepEqual(byPort.get("6443"), ["203.0.113.0/24"]);
        for (const s of ofType(prod, SERVER)) assert.equal((s.inputs.firewallIds as unknown[]).length, 1);
    });

    it("turns on Hetzner delete and rebuild protection (prod sets protection)", () => {
        for (const s of ofType(prod, SERVER)) {
            assert.equal(s.inputs.deleteProtection, true);
            assert.equal(s.inputs.rebuildProtection, true);
        }
        for (const type of ["hcloud:index/network:Network", "hcloud:index/loadBalancer:LoadBalancer", "hcloud:index/primaryIp:PrimaryIp"]) {
            for (const r of ofType(prod, type)) assert.equal(r.inputs.deleteProtection, true, `${type} ${r.name}`);
        }
    });

    it("balances HTTP and HTTPS, not the API, on the load balancer by default", () => {
        const ports = ofType(prod, "hcloud:index/loadBalancerService:LoadBalancerService").map((s) => s.inputs.listenPort);
        assert.deepEqual(ports, [80, 443]);
        const target = one(prod, "hcloud:index/loadBalancerTarget:LoadBalancerTarget");
        assert.equal(target.inputs.labelSelector, "cluster=prod");
        assert.equal(target.inputs.usePrivateIp, true);
    });

    it("labels every Hetzner resource with the cluster", () => {
        for (const r of prod.run.resources.filter((x) => x.type.startsWith("hcloud:index/") && x.inputs.labels !== undefined)) {
            assert.equal((plain(r.inputs.labels) as Record<string, string>).cluster, "prod", r.name);
        }
    });

    it("reaches the cluster with a ServiceAccount token (no 365-day client certificate), issued over SSH without logging it", () => {
        const credential = one(prod, APPLY, "prod-credential");
        assert.equal(credential.inputs.logging, "none");
        assert.ok(credential.additionalSecretOutputs.includes("stdout"));
        assert.deepEqual(applyArgs(prod, "prod-credential"), ["1"]);
        const kubeconfig = parse(String(secretInput(prod.run.outputs.kubeconfig))) as { clusters: { cluster: { server: string } }[]; users: { user: Record<string, string> }[] };
        assert.deepEqual(Object.keys(kubeconfig.users[0].user), ["token"]);
        const firstIp = (prod.run.outputs.servers as { publicIpv4: string }[])[0].publicIpv4;
        assert.equal(kubeconfig.clusters[0].cluster.server, `https://${firstIp}:6443`);
        assert.ok(isSecretValue(prod.run.outputs.sshPrivateKey));
    });

    it("gives the Kubernetes provider a stable cluster identifier, so a new endpoint or token never replaces in-cluster objects", async () => {
        const provider = one(prod, "pulumi:providers:kubernetes");
        assert.equal(provider.inputs.clusterIdentifier, "hetzner-k3s/prod/prod");
        const moved = await render("prod", { "platform:apiHostname": "k8s.example.com", "platform:clusterCredentialVersion": "2" });
        assert.equal(one(moved, "pulumi:providers:kubernetes").inputs.clusterIdentifier, provider.inputs.clusterIdentifier);
        assert.deepEqual(applyArgs(moved, "prod-credential"), ["2"], "a new credential version issues a new token");
    });

    it("replaces a server by deleting it first (its name and addresses are needed by the new one)", () => {
        for (const server of ofType(prod, SERVER)) assert.equal(server.deleteBeforeReplace, true, server.name);
    });

    it("builds the Kubernetes provider from the secret kubeconfig and passes it to every in-cluster object", () => {
        const provider = one(prod, "pulumi:providers:kubernetes");
        assert.ok(isSecretValue(provider.inputs.kubeconfig));
        const k8sObjects = prod.run.resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
        assert.ok(k8sObjects.length > 0);
        for (const r of k8sObjects) assert.ok(r.provider?.startsWith(`${provider.urn}::`), `${r.type} ${r.name} uses ${r.provider}`);
    });

    it("gives the Hetzner CCM and CSI their token through a Kubernetes Secret, not user-data or chart values", () => {
        const secret = one(prod, "kubernetes:core/v1:Secret", "prod-addons-hcloud");
        assert.deepEqual(plain(secret.inputs.metadata), { name: "hcloud", namespace: "kube-system" });
        const data = secretInput(secret.inputs.stringData) as Record<string, string>;
        assert.match(data.token, /^offline-placeholder-/);
        const charts = ofType(prod, "kubernetes:helm.cattle.io/v1:HelmChart");
        assert.deepEqual(charts.map((c) => (c.inputs.spec as { chart: string }).chart), ["hcloud-cloud-controller-manager", "hcloud-csi"]);
        for (const c of charts) assert.ok(!JSON.stringify(c.inputs).includes(data.token));
        const ccmValues = parse((charts[0].inputs.spec as { valuesContent: string }).valuesContent) as { networking: { enabled: boolean } };
        assert.equal(ccmValues.networking.enabled, true);
    });

    it("offers a StorageClass that retains volumes", () => {
        const sc = one(prod, "kubernetes:storage.k8s.io/v1:StorageClass");
        assert.equal(sc.inputs.reclaimPolicy, "Retain");
        assert.equal(sc.inputs.provisioner, "csi.hetzner.cloud");
    });

    it("pins the system-upgrade-controller Plans to the configured k3s version, one node at a time", () => {
        const plans = ofType(prod, "kubernetes:upgrade.cattle.io/v1:Plan");
        assert.equal(plans.length, 2);
        for (const p of plans) {
            const spec = p.inputs.spec as { version: string; concurrency: number };
            assert.equal(spec.version, "v1.34.6+k3s1");
            assert.equal(spec.concurrency, 1);
        }
        // kubectl drain --timeout: a PDB at its limit cannot keep an agent cordoned for hours.
        const agent = plans.find((p) => (plain(p.inputs.metadata) as { name: string }).name === "k3s-agent");
        assert.equal((agent?.inputs.spec as { drain: { timeout: string } }).drain.timeout, "15m");
    });

    it("runs the system-upgrade-controller as its v0.17.0 release does: it owns its Plan CRD, one leader, no cluster-admin", () => {
        // The controller creates-or-updates its CRD at start (pkg/upgrade/controller.go registerCRD): a second owner would fight it.
        assert.equal(ofType(prod, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition").length, 0);
        for (const binding of ofType(prod, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")) {
            assert.notEqual((binding.inputs.roleRef as { name: string }).name, "cluster-admin", binding.name);
        }
        const controller = ofType(prod, "kubernetes:apps/v1:Deployment").find((d) => (plain(d.inputs.metadata) as { name: string }).name === "system-upgrade-controller");
        assert.ok(controller);
        const spec = controller.inputs.spec as {
            strategy: { type: string }; replicas?: number;
            template: { metadata: { labels: Record<string, string> }; spec: { containers: { env: { name: string }[] }[] } };
        };
        assert.equal(spec.strategy.type, "Recreate", "never two controllers, even during a rollout");
        assert.equal(spec.replicas, undefined);
        // Drains skip pods with this label, so the controller does not evict itself.
        assert.equal(spec.template.metadata.labels["upgrade.cattle.io/controller"], "system-upgrade-controller");
        assert.ok(spec.template.spec.containers[0].env.some((e) => e.name === "SYSTEM_UPGRADE_CONTROLLER_NODE_NAME"));
        const env = ofType(prod, "kubernetes:core/v1:ConfigMap").find((c) => (plain(c.inputs.metadata) as { name: string }).name === "default-controller-env");
        assert.equal((env?.inputs.data as Record<string, string>).SYSTEM_UPGRADE_CONTROLLER_LEADER_ELECT, "true");
        // What the upgrade Jobs' drain needs, and no more: evict pods, cordon nodes.
        const drainer = ofType(prod, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole").find((c) => (plain(c.inputs.metadata) as { name: string }).name === "system-upgrade-controller-drainer");
        const rules = drainer?.inputs.rules as { resources: string[]; verbs: string[] }[];
        assert.ok(rules.some((r) => r.resources.includes("pods/eviction") && r.verbs.includes("create")));
        assert.ok(!rules.some((r) => r.verbs.includes("*") || r.resources.includes("*")));
    });
});

describe("config changes", () => {
    it("a new k3s version changes only the ignored user-data of servers, and the upgrade Plans", async () => {
        const before = await render("prod");
        const after = await render("prod", { "platform:k3sVersion": "v1.34.7+k3s1" });
        for (const name of ["prod-server-1", "prod-server-2", "prod-server-3"]) {
            const a = one(before, SERVER, name);
            const b = one(after, SERVER, name);
            const changed = Object.keys({ ...a.inputs, ...b.inputs }).filter((k) => JSON.stringify(a.inputs[k]) !== JSON.stringify(b.inputs[k]));
            assert.deepEqual(changed, ["userData"]);
            assert.ok(b.ignoreChanges.includes("userData"));
        }
        for (const p of ofType(after, "kubernetes:upgrade.cattle.io/v1:Plan")) {
            assert.equal((p.inputs.spec as { version: string }).version, "v1.34.7+k3s1");
        }
    });

    it("an agent pool joins any server with the agent token, spread over placement groups of at most 10", async () => {
        const r = await render("prod", { "platform:agentCount": "12", "platform:agentServerType": "cpx32" });
        const agents = ofType(r, SERVER).filter((x) => String(x.name).includes("-agent-"));
        assert.equal(agents.length, 12);
        const groups = ofType(r, "hcloud:index/placementGroup:PlacementGroup");
        assert.equal(groups.length, 3);
        assert.equal(new Set(agents.map((a) => a.inputs.placementGroupId)).size, 2);
        assert.deepEqual(applyArgs(r, "prod-agent-12-k3s-config"), ["agent", "prod-agent-12", "10.0.1.112", "10.0.1.11", "10.0.1.12", "10.0.1.13"]);
        const c = k3sConfigOf(r, "prod-agent-12");
        assert.equal(c["node-ip"], "10.0.1.112");
        assert.equal(c.token, k3sConfigOf(r, "prod-server-1")["agent-token"]);
        assert.notEqual(c.token, k3sConfigOf(r, "prod-server-1").token, "agents never get the server token");
        const waitsFor = one(r, "command:remote:Command", "prod-agent-12-k3s-config").dependencies;
        const token = (name: string) => one(r, "random:index/randomPassword:RandomPassword", name).urn;
        assert.ok(waitsFor.includes(token("prod-agent-token")));
        assert.ok(!waitsFor.includes(token("prod-token")), "nor does their config wait for it");
        assert.equal(one(r, SERVER, "prod-agent-1").inputs.serverType, "cpx32");
        assert.match(userData(r, "prod-agent-1"), /path: \/etc\/systemd\/system\/k3s-agent\.service/);
    });

    it("changing etcdSnapshotRetention or apiHostname reaches every server by a rolling apply, and changes no server and no in-cluster object", async () => {
        const before = await render("prod");
        for (const [key, value] of [["platform:etcdSnapshotRetention", "40"], ["platform:apiHostname", "k8s.example.com"]]) {
            const after = await render("prod", { [key]: value });
            for (const n of ["prod-server-1", "prod-server-2", "prod-server-3"]) {
                assert.notDeepEqual(k3sConfigOf(after, n), k3sConfigOf(before, n), `${key}: ${n} gets the change`);
                assert.deepEqual(one(after, SERVER, n).inputs, one(before, SERVER, n).inputs, `${key}: ${n} itself is untouched`);
            }
            const inCluster = (r: Render) => r.run.resources.filter((x) => x.custom && x.type.startsWith("kubernetes:")).map((x) => [x.name, x.inputs]);
            assert.deepEqual(inCluster(after), inCluster(before), `${key}: no in-cluster object changes`);
        }
        const after = await render("prod", { "platform:apiHostname": "k8s.example.com" });
        assert.ok((k3sConfigOf(after, "prod-server-2")["tls-san"] as string[]).includes("k8s.example.com"));
        assert.equal(k3sConfigOf(await render("prod", { "platform:etcdSnapshotRetention": "40" }), "prod-server-3")["etcd-snapshot-retention"], 40);
    });

    it("with loadBalancerApi the LB also serves 6443 and the kubeconfig points at it", async () => {
        const r = await render("prod", { "platform:loadBalancerApi": "true" });
        const ports = ofType(r, "hcloud:index/loadBalancerService:LoadBalancerService").map((s) => s.inputs.listenPort);
        assert.deepEqual(ports, [80, 443, 6443]);
        assert.equal(r.run.outputs.apiEndpoint, `https://${String(r.run.outputs.loadBalancerIpv4)}:6443`);
    });

    it("an API hostname goes into the certificate and the kubeconfig", async () => {
        const r = await render("prod", { "platform:apiHostname": "k8s.example.com" });
        assert.equal(r.run.outputs.apiEndpoint, "https://k8s.example.com:6443");
        assert.ok((k3sConfigOf(r, "prod-server-2")["tls-san"] as string[]).includes("k8s.example.com"));
    });

    it("etcd snapshots go to S3 when configured; k3s reads the keys from a Secret, never from a node's disk or user-data", async () => {
        const r = await render("prod", {
            "platform:etcdS3Bucket": "etcd-snapshots", "platform:etcdS3AccessKey": "AKID", "platform:etcdS3SecretKey": "s3-secret-value-123",
        }, ["platform:etcdS3SecretKey"]);
        const c = k3sConfigOf(r, "prod-server-1");
        assert.equal(c["etcd-s3"], true);
        assert.equal(c["etcd-s3-config-secret"], "k3s-etcd-snapshot-s3-config");
        assert.ok(!JSON.stringify(c).includes("s3-secret-value-123"));
        const secret = one(r, "kubernetes:core/v1:Secret", "prod-etcd-s3");
        assert.deepEqual(plain(secret.inputs.metadata), { name: "k3s-etcd-snapshot-s3-config", namespace: "kube-system" });
        const data = secretInput(secret.inputs.stringData) as Record<string, string>;
        assert.equal(data["etcd-s3-bucket"], "etcd-snapshots");
        assert.equal(data["etcd-s3-secret-key"], "s3-secret-value-123");
        for (const text of r.files.values()) assert.ok(!text.includes("s3-secret-value-123"));
    });

    it("the dev stack is one unprotected server without a load balancer, bootstrapped once", async () => {
        const r = await render("dev");
        assert.deepEqual(ofType(r, SERVER).map((x) => [x.inputs.serverType, x.inputs.deleteProtection]), [["cx23", false]]);
        assert.equal(ofType(r, "hcloud:index/loadBalancer:LoadBalancer").length, 0);
        assert.deepEqual(applyArgs(r, "dev-bootstrap"), ["server", "dev-server-1", "10.0.1.11", "--cluster-init"]);
        assert.deepEqual(applyArgs(r, "dev-server-1-k3s-config"), ["server", "dev-server-1", "10.0.1.11"]);
    });
});

describe("a cluster that already runs (live Hetzner state)", () => {
    const liveServer = (n: number, extra: Record<string, unknown> = {}) => ({
        name: `prod-server-${n}`, status: "running", serverType: "cx33", location: "fsn1", ipv4Address: `203.0.113.${n}`,
        labels: { cluster: "prod", role: "server" }, networks: [{ ip: `10.0.1.${10 + n}`, networkId: 1 }], ...extra,
    });
    const live = (servers: Record<string, unknown>[]) => ({ servers, networks: [{ name: "prod", ipRange: "10.0.0.0/16", labels: { cluster: "prod" } }] });

    it("reaches the API and issues credentials through a running server when server-1 is down", async () => {
        const r = await render("prod", {}, [], live([liveServer(1, { status: "off" }), liveServer(2), liveServer(3)]));
        assert.equal(r.run.outputs.apiEndpoint, "https://203.0.113.2:6443");
        const credential = one(r, APPLY, "prod-credential");
        assert.equal((plain(credential.inputs.connection) as { host: string }).host, "203.0.113.2");
        assert.ok(credential.ignoreChanges.includes("connection"), "a different host never re-issues the credential");
    });

    it("accepts an edit that keeps the topology", async () => {
        const r = await render("prod", { "platform:etcdSnapshotRetention": "40" }, [], live([liveServer(1), liveServer(2), liveServer(3)]));
        assert.equal(ofType(r, SERVER).length, 3);
    });

    async function refusal(overrides: Record<string, string>, servers = [liveServer(1), liveServer(2), liveServer(3)]): Promise<{ key: string; message: string; fix: string }[]> {
        try {
            await render("prod", overrides, [], live(servers));
        } catch (err) {
            if (err instanceof Error && err.name === "ConfigError") return (err as ConfigError).problems.map((p) => ({ ...p }));
            throw err;
        }
        assert.fail("the edit was not refused");
    }

    it("refuses edits that would break it, naming the key, why, and a command that restores the running value", async () => {
        const cases: [Record<string, string>, string, RegExp, string][] = [
            [{ "platform:controlPlaneCount": "1" }, "platform:controlPlaneCount", /would delete prod-server-2, prod-server-3 without removing their etcd members/, "pulumi config set platform:controlPlaneCount 3"],
            [{ "platform:networkCidr": "10.1.0.0/16", "platform:subnetCidr": "10.1.1.0/24" }, "platform:networkCidr", /re-address every node under etcd/, "pulumi config set platform:networkCidr 10.0.0.0/16"],
            [{ "platform:subnetCidr": "10.0.2.0/24" }, "platform:subnetCidr", /outside 10\.0\.2\.0\/24/, "pulumi config set platform:subnetCidr 10.0.1.0/24"],
            [{ "platform:location": "nbg1" }, "platform:location", /runs in fsn1/, "pulumi config set platform:location fsn1"],
            [{ "platform:controlPlaneServerType": "cx43" }, "platform:controlPlaneServerType", /powers them off together/, "pulumi config set platform:controlPlaneServerType cx33"],
        ];
        for (const [overrides, key, message, fix] of cases) {
            const problems = await refusal(overrides);
            const p = problems.find((x) => x.key === key);
            assert.ok(p, `${JSON.stringify(overrides)}: ${JSON.stringify(problems)}`);
            assert.match(p.message, message);
            assert.equal(p.fix, fix);
        }
    });

    it("lets a resize through once one server was resized by the runbook", async () => {
        const r = await render("prod", { "platform:controlPlaneServerType": "cx43" }, [], live([liveServer(1, { serverType: "cx43" }), liveServer(2), liveServer(3)]));
        assert.equal(ofType(r, SERVER).length, 3);
    });
});

describe("existing-cluster mode", () => {
    it("creates nothing on Hetzner and deploys with the configured context", async () => {
        const r = await render("local");
        assert.equal(r.run.resources.filter((x) => x.type.startsWith("hcloud:") || x.type.startsWith("command:")).length, 0);
        const provider = one(r, "pulumi:providers:kubernetes");
        assert.equal(provider.inputs.context, "k3d-platform");
        assert.equal(provider.inputs.kubeconfig, undefined);
        assert.deepEqual(Object.keys(r.run.outputs).sort(), ["apps", "establishedSettings", "mode"], "no cluster outputs");
    });

    it("keeps a kubeconfig given as config secret", async () => {
        const r = await render("local", { "platform:kubeconfig": "apiVersion: v1\nkind: Config\n# kubeconfig-secret-marker\n" }, ["platform:kubeconfig"]);
        const provider = one(r, "pulumi:providers:kubernetes");
        assert.match(String(secretInput(provider.inputs.kubeconfig)), /kubeconfig-secret-marker/);
        assert.ok(!r.files.get("resources.json")?.includes("kubeconfig-secret-marker"));
    });
});
