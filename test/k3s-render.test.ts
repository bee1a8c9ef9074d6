// Pure renderers: the k3s config, the cloud-init user-data and the kubeconfig rewrite.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { k3sConfig, K3sNodeSpec, nodeAddresses, readScript, renderUserData, rewriteKubeconfigServer } from "../components/k3s-render";

const first: K3sNodeSpec = {
    role: "server",
    nodeName: "prod-server-1",
    privateIp: "10.0.1.11",
    publicIpv4: "198.51.100.1",
    clusterInit: true,
    token: "k3s-token-value",
    k3sVersion: "v1.34.6+k3s1",
    tlsSans: ["10.0.1.11", "198.51.100.1", "k8s.example.com", "10.0.1.11"],
    etcdSnapshots: { schedule: "0 */6 * * *", retention: 20 },
    nodeLabels: { "platform.io/role": "server" },
};
const joiner: K3sNodeSpec = { ...first, nodeName: "prod-server-2", privateIp: "10.0.1.12", publicIpv4: "198.51.100.2", clusterInit: false, joinAddress: "10.0.1.11" };
const agent: K3sNodeSpec = {
    ...joiner, role: "agent", nodeName: "prod-agent-1", privateIp: "10.0.1.101", tlsSans: [], etcdSnapshots: undefined,
    nodeLabels: { "platform.io/role": "agent" },
};

interface CloudConfig {
    write_files: { path: string; permissions: string; content: string }[];
    runcmd: string[][];
}

function userDataOf(spec: K3sNodeSpec): CloudConfig {
    const text = renderUserData(spec);
    assert.ok(text.startsWith("#cloud-config\n"), "cloud-init needs the #cloud-config header");
    return parse(text) as CloudConfig;
}

describe("k3sConfig", () => {
    it("initialises etcd on the first server only, and joins the others over the private network", () => {
        const init = k3sConfig(first);
        assert.equal(init["cluster-init"], true);
        assert.equal(init.server, undefined);
        const join = k3sConfig(joiner);
        assert.equal(join["cluster-init"], undefined);
        assert.equal(join.server, "https://10.0.1.11:6443");
        assert.equal(k3sConfig(agent).server, "https://10.0.1.11:6443");
    });

    it("keeps cluster traffic on the private address and hands cloud duties to the Hetzner CCM", () => {
        const c = k3sConfig(joiner);
        assert.equal(c["node-ip"], "10.0.1.12");
        assert.equal(c["advertise-address"], "10.0.1.12");
        assert.equal(c["node-external-ip"], "198.51.100.2");
        assert.equal(c["disable-cloud-controller"], true);
        assert.deepEqual(c["kubelet-arg"], ["cloud-provider=external"]);
        assert.equal(c["secrets-encryption"], true);
        assert.deepEqual(c.disable, ["servicelb", "local-storage"]);
    });

    it("puts every API address in tls-san once", () => {
        assert.deepEqual(k3sConfig(first)["tls-san"], ["10.0.1.11", "198.51.100.1", "k8s.example.com"]);
    });

    it("schedules etcd snapshots, with S3 upload only when configured", () => {
        const local = k3sConfig(first);
        assert.equal(local["etcd-snapshot-schedule-cron"], "0 */6 * * *");
        assert.equal(local["etcd-snapshot-retention"], 20);
        assert.equal(local["etcd-s3"], undefined);
        const s3 = k3sConfig({
            ...first,
            etcdSnapshots: { schedule: "0 3 * * *", retention: 5, s3: { endpoint: "fsn1.your-objectstorage.com", bucket: "b", folder: "etcd", region: "fsn1", accessKey: "AK", secretKey: "SK" } },
        });
        assert.equal(s3["etcd-s3"], true);
        assert.equal(s3["etcd-s3-bucket"], "b");
        assert.equal(s3["etcd-s3-secret-key"], "SK");
    });

    it("gives agents no server-only settings", () => {
        const c = k3sConfig(agent);
        for (const key of ["cluster-init", "tls-san", "disable-cloud-controller", "secrets-encryption", "etcd-snapshot-schedule-cron", "advertise-address"]) {
            assert.equal(c[key], undefined, key);
        }
        assert.deepEqual(c["node-label"], ["platform.io/role=agent"]);
    });

    it("refuses inconsistent node specs", () => {
        assert.throws(() => k3sConfig({ ...first, joinAddress: "10.0.1.12" }), /cannot also join/);
        assert.throws(() => k3sConfig({ ...joiner, joinAddress: undefined }), /needs a join address/);
        assert.throws(() => k3sConfig({ ...agent, clusterInit: true, joinAddress: undefined }), /agent cannot initialise/);
    });
});

describe("renderUserData", () => {
    it("writes the k3s config (root-only) and the shipped install script, then runs it", () => {
        const ud = userDataOf(joiner);
        const config = ud.write_files.find((f) => f.path === "/etc/rancher/k3s/config.yaml");
        assert.ok(config);
        assert.equal(config.permissions, "0600");
        assert.deepEqual(parse(config.content), k3sConfig(joiner));
        const script = ud.write_files.find((f) => f.path === "/usr/local/sbin/k3s-install.sh");
        assert.ok(script);
        assert.equal(script.content, readScript("k3s-install.sh"));
        assert.deepEqual(ud.runcmd, [["/usr/local/sbin/k3s-install.sh", "server", "v1.34.6+k3s1", "10.0.1.12", "10.0.1.11"]]);
    });

    it("has the cluster-init server wait for no one", () => {
        assert.deepEqual(userDataOf(first).runcmd, [["/usr/local/sbin/k3s-install.sh", "server", "v1.34.6+k3s1", "10.0.1.11"]]);
    });

    it("installs agents as agents", () => {
        assert.equal(userDataOf(agent).runcmd[0][1], "agent");
    });
});

describe("rewriteKubeconfigServer", () => {
    const k3sYaml = [
        "apiVersion: v1",
        "clusters:",
        "- cluster:",
        "    certificate-authority-data: Q0E=",
        "    server: https://127.0.0.1:6443",
        "  name: default",
        "contexts:",
        "- context: {cluster: default, user: default}",
        "  name: default",
        "current-context: default",
        "kind: Config",
        "users:",
        "- name: default",
        "  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}",
    ].join("\n");

    it("points the kubeconfig at the real endpoint and names it after the cluster", () => {
        const doc = parse(rewriteKubeconfigServer(k3sYaml, "https://198.51.100.1:6443", "prod")) as {
            clusters: { name: string; cluster: { server: string; "certificate-authority-data": string } }[];
            contexts: { name: string; context: { cluster: string; user: string } }[];
            users: { name: string; user: Record<string, string> }[];
            "current-context": string;
        };
        assert.equal(doc.clusters[0].cluster.server, "https://198.51.100.1:6443");
        assert.equal(doc.clusters[0].cluster["certificate-authority-data"], "Q0E=");
        assert.equal(doc.clusters[0].name, "prod");
        assert.deepEqual(doc.contexts[0], { name: "prod", context: { cluster: "prod", user: "prod" } });
        assert.equal(doc.users[0].name, "prod");
        assert.equal(doc.users[0].user["client-key-data"], "S0VZ");
        assert.equal(doc["current-context"], "prod");
    });

    it("fails clearly on something that is not a kubeconfig", () => {
        assert.throws(() => rewriteKubeconfigServer("", "https://x:6443", "prod"), /no clusters/);
    });
});

describe("nodeAddresses", () => {
    it("assigns fixed private addresses: servers from .11, agents from .101, the LB at .5", () => {
        assert.deepEqual(nodeAddresses("10.0.1.0/24", 3, 2), {
            servers: ["10.0.1.11", "10.0.1.12", "10.0.1.13"],
            agents: ["10.0.1.101", "10.0.1.102"],
            loadBalancer: "10.0.1.5",
        });
    });
});
