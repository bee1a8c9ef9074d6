// Pure renderers: the k3s config applied over SSH, the user-data that only
// prepares a node, the remote commands, and the token kubeconfig.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { parse } from "yaml";
import {
    CLUSTER_CIDR, k3sConfig, K3sNodeSpec, k3sUnit, nodeAddresses, PRIVATE_NETPLAN, readScript, remoteScript, renderUserData, serverArch, shellQuote,
    tokenKubeconfig,
} from "../components/cluster/k3s-render";

const server: K3sNodeSpec = {
    role: "server",
    nodeName: "prod-server-2",
    privateIp: "10.0.1.12",
    publicIpv4: "198.51.100.2",
    token: "k3s-server-token-value",
    agentToken: "k3s-agent-token-value",
    tlsSans: ["10.0.1.11", "198.51.100.1", "k8s.example.com", "10.0.1.11"],
    etcdSnapshots: { schedule: "0 */6 * * *", retention: 20 },
    nodeLabels: { "platform.io/role": "server" },
};
const agent: K3sNodeSpec = {
    role: "agent", nodeName: "prod-agent-1", privateIp: "10.0.1.101", publicIpv4: "198.51.100.9", token: "k3s-agent-token-value",
    tlsSans: [], nodeLabels: { "platform.io/role": "agent" },
};

interface CloudConfig {
    write_files: { path: string; permissions: string; content: string }[];
    runcmd: string[][];
}

function userDataOf(role: "server" | "agent", arch: "amd64" | "arm64" = "amd64"): { text: string; doc: CloudConfig } {
    const text = renderUserData({ role, k3sVersion: "v1.34.6+k3s1", arch });
    assert.ok(text.startsWith("#cloud-config\n"), "cloud-init needs the #cloud-config header");
    return { text, doc: parse(text) as CloudConfig };
}

describe("k3sConfig", () => {
    it("leaves joining to the node: no server address, no cluster-init, no interface name", () => {
        for (const spec of [server, agent]) {
            const c = k3sConfig(spec);
            for (const key of ["server", "cluster-init", "flannel-iface"]) assert.equal(c[key], undefined, `${spec.role} ${key}`);
        }
    });

    it("gives servers the server token and the agent token, and agents only the agent token", () => {
        const s = k3sConfig(server);
        assert.equal(s.token, "k3s-server-token-value");
        assert.equal(s["agent-token"], "k3s-agent-token-value");
        const a = k3sConfig(agent);
        assert.equal(a.token, "k3s-agent-token-value");
        assert.equal(a["agent-token"], undefined);
        assert.ok(!JSON.stringify(a).includes("k3s-server-token-value"), "an agent never holds the server token");
    });

    it("keeps cluster traffic on the private address and hands cloud duties to the Hetzner CCM", () => {
        const c = k3sConfig(server);
        assert.equal(c["node-ip"], "10.0.1.12");
        assert.equal(c["advertise-address"], "10.0.1.12");
        assert.equal(c["node-external-ip"], "198.51.100.2");
        assert.equal(c["disable-cloud-controller"], true);
        assert.deepEqual(c["kubelet-arg"], ["cloud-provider=external"]);
        assert.equal(c["secrets-encryption"], true);
        assert.deepEqual(c.disable, ["servicelb", "local-storage"]);
        assert.equal(c["cluster-cidr"], CLUSTER_CIDR);
    });

    it("puts every API address in tls-san once", () => {
        assert.deepEqual(k3sConfig(server)["tls-san"], ["10.0.1.11", "198.51.100.1", "k8s.example.com"]);
    });

    it("schedules etcd snapshots; S3 settings and keys come from a Secret, never from the config file", () => {
        const local = k3sConfig(server);
        assert.equal(local["etcd-snapshot-schedule-cron"], "0 */6 * * *");
        assert.equal(local["etcd-snapshot-retention"], 20);
        assert.equal(local["etcd-s3"], undefined);
        const s3 = k3sConfig({ ...server, etcdSnapshots: { schedule: "0 3 * * *", retention: 5, s3ConfigSecret: "k3s-etcd-snapshot-s3-config" } });
        assert.equal(s3["etcd-s3"], true);
        assert.equal(s3["etcd-s3-config-secret"], "k3s-etcd-snapshot-s3-config");
        // k3s ignores the Secret when any other etcd-s3 flag is set (docs.k3s.io, etcd-snapshot: S3 configuration Secret).
        assert.deepEqual(Object.keys(s3).filter((k) => k.startsWith("etcd-s3")).sort(), ["etcd-s3", "etcd-s3-config-secret"]);
    });

    it("gives agents no server-only settings", () => {
        const c = k3sConfig(agent);
        for (const key of ["tls-san", "disable-cloud-controller", "secrets-encryption", "etcd-snapshot-schedule-cron", "advertise-address", "agent-token"]) {
            assert.equal(c[key], undefined, key);
        }
        assert.deepEqual(c["node-label"], ["platform.io/role=agent"]);
        assert.throws(() => k3sConfig({ ...agent, agentToken: "x" }), /an agent has no agent token/);
    });
});

describe("renderUserData", () => {
    it("holds no token, key or password: only the shipped scripts, units and netplan", () => {
        for (const role of ["server", "agent"] as const) {
            const { text, doc } = userDataOf(role);
            // The k3s config (with the tokens) arrives over SSH; every generated secret is grepped for in test/cluster.test.ts.
            assert.doesNotMatch(text, /^\s*(token|agent-token|etcd-s3-[a-z-]*key):/m, `${role} user-data sets a credential`);
            assert.ok(!doc.write_files.some((f) => f.path.startsWith("/etc/rancher/k3s/")), `${role} user-data writes k3s config`);
            assert.deepEqual(doc.write_files.map((f) => f.path), [
                "/etc/netplan/60-platform-private.yaml",
                "/usr/local/sbin/node-metadata-block.sh",
                "/etc/systemd/system/platform-metadata-block.service",
                `/etc/systemd/system/${role === "server" ? "k3s" : "k3s-agent"}.service`,
                "/usr/local/sbin/node-prepare.sh",
            ]);
            assert.equal(doc.write_files[1].content, readScript("node-metadata-block.sh"));
            assert.equal(doc.write_files[4].content, readScript("node-prepare.sh"));
        }
    });

    it("installs the pinned k3s for the server's architecture", () => {
        assert.deepEqual(userDataOf("server").doc.runcmd, [["/usr/local/sbin/node-prepare.sh", "v1.34.6+k3s1", "amd64"]]);
        assert.deepEqual(userDataOf("agent", "arm64").doc.runcmd, [["/usr/local/sbin/node-prepare.sh", "v1.34.6+k3s1", "arm64"]]);
        assert.equal(serverArch("cax21"), "arm64");
        assert.equal(serverArch("cx33"), "amd64");
        assert.equal(serverArch("cpx32"), "amd64");
    });

    it("runs k3s as a systemd service that keeps containers running across restarts, started only once configured", () => {
        for (const role of ["server", "agent"] as const) {
            const unit = k3sUnit(role);
            assert.match(unit, new RegExp(`^ExecStart=/usr/local/bin/k3s ${role}$`, "m"));
            assert.match(unit, /^KillMode=process$/m);
            assert.match(unit, /^Restart=always$/m);
        }
        // node-prepare.sh enables only the metadata block; k3s-apply-config.sh enables k3s once its config is there.
        assert.doesNotMatch(readScript("node-prepare.sh"), /enable[^\n]*k3s/);
    });

    it("brings up the private interface by DHCP whenever it appears", () => {
        const plan = parse(PRIVATE_NETPLAN) as { network: { ethernets: Record<string, { match: { name: string }; dhcp4: boolean; optional: boolean }> } };
        const [entry] = Object.values(plan.network.ethernets);
        assert.deepEqual(entry.match, { name: "en*" });
        assert.equal(entry.dhcp4, true);
        assert.equal(entry.optional, true, "boot does not wait for an interface that is attached later");
    });
});

describe("remoteScript", () => {
    it("passes the arguments to the script as bash sees them, quoting what needs it", () => {
        const cmd = remoteScript("node-metadata-block.sh", ["a b", "it's", "$HOME", "plain-1.2"]);
        assert.ok(cmd.startsWith("set -- 'a b' 'it'\\''s' '$HOME' plain-1.2\n"));
        // What the remote shell does with the first line: the arguments come back unchanged.
        const r = spawnSync("bash", ["-c", `${cmd.split("\n")[0]}\nprintf '%s\\n' "$@"`], { encoding: "utf8" });
        assert.equal(r.stdout, "a b\nit's\n$HOME\nplain-1.2\n");
        assert.equal(shellQuote("v1.34.6+k3s1"), "v1.34.6+k3s1");
    });
});

describe("tokenKubeconfig", () => {
    it("authenticates with the ServiceAccount token against the given endpoint and CA", () => {
        const doc = parse(tokenKubeconfig({ server: "https://198.51.100.1:6443", caData: "Q0E=", token: "eyJ.token", name: "prod" })) as {
            clusters: { name: string; cluster: Record<string, string> }[];
            users: { name: string; user: Record<string, string> }[];
            contexts: { name: string; context: Record<string, string> }[];
            "current-context": string;
        };
        assert.deepEqual(doc.clusters, [{ name: "prod", cluster: { server: "https://198.51.100.1:6443", "certificate-authority-data": "Q0E=" } }]);
        assert.deepEqual(doc.users, [{ name: "prod", user: { token: "eyJ.token" } }]);
        assert.deepEqual(doc.contexts, [{ name: "prod", context: { cluster: "prod", user: "prod" } }]);
        assert.equal(doc["current-context"], "prod");
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
