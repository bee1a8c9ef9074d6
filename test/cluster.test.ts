// The real program under Pulumi's mock runtime: what `pulumi up` would create
// for the committed stacks and for variations of their config.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { isSecretValue } from "../tools/mock-runtime";
import { Render } from "../tools/render";
import { one, ofType, plain, render, secretInput } from "./support/stack";

const SERVER = "hcloud:index/server:Server";

function userData(r: Render, serverName: string): string {
    return String(secretInput(one(r, SERVER, serverName).inputs.userData));
}

function k3sConfigOf(r: Render, serverName: string): Record<string, unknown> {
    const doc = parse(userData(r, serverName)) as { write_files: { path: string; content: string }[] };
    const file = doc.write_files.find((f) => f.path === "/etc/rancher/k3s/config.yaml");
    assert.ok(file, "user-data writes the k3s config");
    return parse(file.content) as Record<string, unknown>;
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

    it("initialises etcd on exactly one server; the others join it over the private network", () => {
        const configs = ["prod-server-1", "prod-server-2", "prod-server-3"].map((n) => k3sConfigOf(prod, n));
        assert.equal(configs.filter((c) => c["cluster-init"] === true).length, 1);
        assert.equal(configs[0]["cluster-init"], true);
        for (const c of configs.slice(1)) assert.equal(c.server, "https://10.0.1.11:6443");
        assert.deepEqual(configs.map((c) => c["node-ip"]), ["10.0.1.11", "10.0.1.12", "10.0.1.13"]);
        for (const s of ofType(prod, SERVER)) {
            assert.deepEqual(plain(s.inputs.networks), [{ networkId: plain(one(prod, "hcloud:index/networkSubnet:NetworkSubnet").inputs.networkId), ip: k3sConfigOf(prod, String(s.inputs.name))["node-ip"] }]);
        }
    });

    it("pins k3s and lists every public and private API address in tls-san", () => {
        const ips = ofType(prod, "hcloud:index/primaryIp:PrimaryIp");
        assert.equal(ips.length, 3);
        const sans = k3sConfigOf(prod, "prod-server-1")["tls-san"] as string[];
        for (const ip of ["10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.5"]) assert.ok(sans.includes(ip), ip);
        const publicIps = (prod.run.outputs.servers as { publicIpv4: string }[]).map((s) => s.publicIpv4);
        for (const ip of publicIps) assert.ok(sans.includes(ip), ip);
        assert.match(userData(prod, "prod-server-1"), /k3s-install\.sh", "server", "v1\.34\.6\+k3s1"|k3s-install\.sh\n?\s*- server\n\s*- v1\.34\.6\+k3s1/);
    });

    it("keeps user-data secret and never puts the Hetzner token in it", () => {
        const token = String(secretInput(one(prod, "pulumi:providers:hcloud").inputs.token));
        assert.match(token, /^offline-placeholder-/);
        for (const s of ofType(prod, SERVER)) {
            assert.ok(isSecretValue(s.inputs.userData), `${s.name} user-data must be secret (it holds the k3s token)`);
            assert.ok(!String(plain(s.inputs.userData)).includes(token), `${s.name} user-data holds the Hetzner token`);
        }
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

    it("reads the kubeconfig over SSH without logging it, and exports it as a secret pointing at the first server", () => {
        const cmd = one(prod, "command:remote:Command");
        assert.equal(cmd.inputs.logging, "none");
        assert.ok(cmd.additionalSecretOutputs.includes("stdout"));
        assert.ok(isSecretValue((cmd.inputs.connection as Record<string, unknown>).privateKey) || isSecretValue(cmd.inputs.connection));
        const kubeconfig = String(secretInput(prod.run.outputs.kubeconfig));
        const firstIp = (prod.run.outputs.servers as { publicIpv4: string }[])[0].publicIpv4;
        assert.equal((parse(kubeconfig) as { clusters: { cluster: { server: string } }[] }).clusters[0].cluster.server, `https://${firstIp}:6443`);
        assert.equal(prod.run.outputs.apiEndpoint, `https://${firstIp}:6443`);
        assert.ok(isSecretValue(prod.run.outputs.sshPrivateKey));
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

    it("an agent pool joins the first server, spread over placement groups of at most 10", async () => {
        const r = await render("prod", { "platform:agentCount": "12", "platform:agentServerType": "cpx32" });
        const agents = ofType(r, SERVER).filter((s) => String(s.name).includes("-agent-"));
        assert.equal(agents.length, 12);
        const groups = ofType(r, "hcloud:index/placementGroup:PlacementGroup");
        assert.equal(groups.length, 3);
        const agentGroupIds = new Set(agents.map((a) => a.inputs.placementGroupId));
        assert.equal(agentGroupIds.size, 2);
        const c = k3sConfigOf(r, "prod-agent-12");
        assert.equal(c.server, "https://10.0.1.11:6443");
        assert.equal(c["node-ip"], "10.0.1.112");
        assert.equal(c["cluster-init"], undefined);
        assert.equal(one(r, SERVER, "prod-agent-1").inputs.serverType, "cpx32");
        assert.match(userData(r, "prod-agent-1"), /- agent\n/);
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

    it("etcd snapshots go to S3 when configured, with the secret key only inside secret user-data", async () => {
        const r = await render("prod", {
            "platform:etcdS3Bucket": "etcd-snapshots", "platform:etcdS3AccessKey": "AKID", "platform:etcdS3SecretKey": "s3-secret-value-123",
        }, ["platform:etcdS3SecretKey"]);
        const c = k3sConfigOf(r, "prod-server-1");
        assert.equal(c["etcd-s3-bucket"], "etcd-snapshots");
        assert.equal(c["etcd-s3-secret-key"], "s3-secret-value-123");
        for (const text of r.files.values()) assert.ok(!text.includes("s3-secret-value-123"));
    });

    it("the dev stack is one unprotected server without a load balancer", async () => {
        const r = await render("dev");
        assert.deepEqual(ofType(r, SERVER).map((s) => [s.inputs.serverType, s.inputs.deleteProtection]), [["cx23", false]]);
        assert.equal(ofType(r, "hcloud:index/loadBalancer:LoadBalancer").length, 0);
        assert.equal(k3sConfigOf(r, "dev-server-1")["cluster-init"], true);
    });
});

describe("existing-cluster mode", () => {
    it("creates nothing on Hetzner and deploys with the configured context", async () => {
        const r = await render("local");
        assert.equal(r.run.resources.filter((x) => x.type.startsWith("hcloud:") || x.type.startsWith("command:")).length, 0);
        const provider = one(r, "pulumi:providers:kubernetes");
        assert.equal(provider.inputs.context, "k3d-platform");
        assert.equal(provider.inputs.kubeconfig, undefined);
        assert.deepEqual(Object.keys(r.run.outputs).sort(), ["apps", "mode"]);
    });

    it("keeps a kubeconfig given as config secret", async () => {
        const r = await render("local", { "platform:kubeconfig": "apiVersion: v1\nkind: Config\n# kubeconfig-secret-marker\n" }, ["platform:kubeconfig"]);
        const provider = one(r, "pulumi:providers:kubernetes");
        assert.match(String(secretInput(provider.inputs.kubeconfig)), /kubeconfig-secret-marker/);
        assert.ok(!r.files.get("resources.json")?.includes("kubeconfig-secret-marker"));
    });
});
