// Pure renderers for k3s nodes: the cloud-init user-data that prepares a node
// (no secret), the k3s config.yaml applied over SSH, the commands that apply
// it, and the token kubeconfig. No Pulumi here: tests and the offline render
// call these directly.
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { PROJECT_DIR } from "../project";

/** Where our shipped shell scripts live (real files, so shellcheck sees what runs). */
export const SCRIPTS_DIR = path.join(PROJECT_DIR, "scripts");

const scripts = new Map<string, string>();

/** A shipped script's text, read once: a render embeds some in every node's user-data and commands. */
export function readScript(name: string): string {
    let text = scripts.get(name);
    if (text === undefined) {
        text = fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
        scripts.set(name, text);
    }
    return text;
}

/** k3s's own pod and service ranges; the private network must not overlap them. */
export const CLUSTER_CIDR = "10.42.0.0/16";
export const SERVICE_CIDR = "10.43.0.0/16";

export interface EtcdSnapshotSpec {
    readonly schedule: string;
    readonly retention: number;
    /** Name of the kube-system Secret holding the S3 settings and keys; absent: local snapshots only. */
    readonly s3ConfigSecret?: string;
}

export interface K3sNodeSpec {
    readonly role: "server" | "agent";
    readonly nodeName: string;
    readonly privateIp: string;
    readonly publicIpv4: string;
    /** Servers: the server token. Agents: the agent token, which cannot join a server. */
    readonly token: string;
    /** Servers only: the token agents join with. */
    readonly agentToken?: string;
    /** Servers only: every name and address the API is reached by. */
    readonly tlsSans: readonly string[];
    /** Servers only. */
    readonly etcdSnapshots?: EtcdSnapshotSpec;
    readonly nodeLabels: Readonly<Record<string, string>>;
}

/**
 * The k3s configuration of one node, as a plain object (YAML-ready). It holds
 * the join token, so it reaches the node over SSH, never in user-data. What
 * only the node can decide is added there by k3s-apply-config.sh: `server`
 * (the first server that answers), `cluster-init` (bootstrap only) and
 * `flannel-iface` (the private interface's name).
 */
export function k3sConfig(spec: K3sNodeSpec): Record<string, unknown> {
    if (spec.role === "agent" && (spec.agentToken !== undefined || spec.etcdSnapshots !== undefined)) {
        throw new Error(`${spec.nodeName}: an agent has no agent token or etcd snapshots`);
    }
    const common: Record<string, unknown> = {
        token: spec.token,
        "node-name": spec.nodeName,
        "node-ip": spec.privateIp,
        "node-external-ip": spec.publicIpv4,
        // The Hetzner cloud controller manager initialises nodes (addresses, zones).
        "kubelet-arg": ["cloud-provider=external"],
        "node-label": Object.entries(spec.nodeLabels).map(([k, v]) => `${k}=${v}`),
    };
    if (spec.role === "agent") return common;

    const snapshots = spec.etcdSnapshots;
    return {
        ...common,
        ...(spec.agentToken !== undefined ? { "agent-token": spec.agentToken } : {}),
        "advertise-address": spec.privateIp,
        "tls-san": [...new Set(spec.tlsSans)],
        "cluster-cidr": CLUSTER_CIDR,
        "service-cidr": SERVICE_CIDR,
        "disable-cloud-controller": true,
        // servicelb and local-path are replaced by the Hetzner LB/CCM and CSI driver.
        disable: ["servicelb", "local-storage"],
        "secrets-encryption": true,
        "write-kubeconfig-mode": "0600",
        ...(snapshots ? {
            "etcd-snapshot-schedule-cron": snapshots.schedule,
            "etcd-snapshot-retention": snapshots.retention,
            // k3s reads endpoint, bucket and keys from this Secret when it takes a snapshot:
            // no S3 key on a command line or in a file on the node.
            ...(snapshots.s3ConfigSecret ? { "etcd-s3": true, "etcd-s3-config-secret": snapshots.s3ConfigSecret } : {}),
        } : {}),
    };
}

/** What a node is prepared with at first boot; nothing secret. */
export interface NodePrepSpec {
    readonly role: "server" | "agent";
    readonly k3sVersion: string;
    /** Hetzner's Arm types (cax) run arm64. */
    readonly arch: "amd64" | "arm64";
}

export function serverArch(serverType: string): NodePrepSpec["arch"] {
    return serverType.startsWith("cax") ? "arm64" : "amd64";
}

/** The systemd unit k3s runs under, as k3s's install.sh writes it (k3s-io/k3s install.sh `create_systemd_service_file`). */
export function k3sUnit(role: NodePrepSpec["role"]): string {
    return [
        "[Unit]",
        "Description=Lightweight Kubernetes",
        "Documentation=https://k3s.io",
        "Wants=network-online.target",
        "After=network-online.target platform-metadata-block.service",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
        "[Service]",
        "Type=notify",
        "EnvironmentFile=-/etc/default/%N",
        // Containers keep running while k3s restarts (a config change, an upgrade).
        "KillMode=process",
        "Delegate=yes",
        "User=root",
        "LimitNOFILE=1048576",
        "LimitNPROC=infinity",
        "LimitCORE=infinity",
        "TasksMax=infinity",
        "TimeoutStartSec=0",
        "Restart=always",
        "RestartSec=5s",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
        "ExecStartPre=-/sbin/modprobe overlay",
        `ExecStart=/usr/local/bin/k3s ${role}`,
        "",
    ].join("\n");
}

export const METADATA_BLOCK_UNIT = [
    "[Unit]",
    "Description=Drop pod traffic to the cloud metadata address",
    "Before=k3s.service k3s-agent.service",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/usr/local/sbin/node-metadata-block.sh ${CLUSTER_CIDR}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
].join("\n");

/**
 * netplan for the private network: DHCP on any `en*` interface (the public one
 * is eth0), also when Hetzner attaches it after boot, which cloud-init does not
 * configure (canonical/cloud-init#4263).
 */
export const PRIVATE_NETPLAN = stringify({
    network: {
        version: 2,
        ethernets: {
            "platform-private": {
                match: { name: "en*" },
                dhcp4: true,
                dhcp6: false,
                optional: true,
            },
        },
    },
});

/** cloud-init user-data for one node: prepares it for k3s. Holds no secret: Hetzner serves it unauthenticated. */
const userData = new Map<string, string>();

/** The same for every node of a role, version and architecture: rendered once for all of them. */
export function renderUserData(spec: NodePrepSpec): string {
    const key = `${spec.role}/${spec.k3sVersion}/${spec.arch}`;
    let text = userData.get(key);
    if (text === undefined) {
        text = renderNodeCloudConfig(spec);
        userData.set(key, text);
    }
    return text;
}

function renderNodeCloudConfig(spec: NodePrepSpec): string {
    const unitName = spec.role === "server" ? "k3s.service" : "k3s-agent.service";
    const cloudConfig = {
        // Servers must not change under a running cluster: packages are upgraded
        // deliberately, k3s by the system-upgrade-controller.
        package_update: false,
        package_upgrade: false,
        ssh_pwauth: false,
        disable_root: false,
        write_files: [
            { path: "/etc/netplan/60-platform-private.yaml", owner: "root:root", permissions: "0600", content: PRIVATE_NETPLAN },
            { path: "/usr/local/sbin/node-metadata-block.sh", owner: "root:root", permissions: "0755", content: readScript("node-metadata-block.sh") },
            { path: "/etc/systemd/system/platform-metadata-block.service", owner: "root:root", permissions: "0644", content: METADATA_BLOCK_UNIT },
            { path: `/etc/systemd/system/${unitName}`, owner: "root:root", permissions: "0644", content: k3sUnit(spec.role) },
            { path: "/usr/local/sbin/node-prepare.sh", owner: "root:root", permissions: "0755", content: readScript("node-prepare.sh") },
        ],
        runcmd: [["/usr/local/sbin/node-prepare.sh", spec.k3sVersion, spec.arch]],
    };
    return `#cloud-config\n${stringify(cloudConfig, { lineWidth: 0 })}`;
}

/** A POSIX shell word for `arg`. */
export function shellQuote(arg: string): string {
    return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/**
 * One of our scripts as the command a remote.Command runs over SSH: the
 * arguments set first, then the script's text (stdin stays free for data).
 */
export function remoteScript(script: string, args: readonly string[]): string {
    return `set -- ${args.map(shellQuote).join(" ")}\n${readScript(script)}`;
}

/** A kubeconfig that authenticates with a ServiceAccount token. */
export function tokenKubeconfig(args: { server: string; caData: string; token: string; name: string }): string {
    return stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: args.name, cluster: { server: args.server, "certificate-authority-data": args.caData } }],
        users: [{ name: args.name, user: { token: args.token } }],
        contexts: [{ name: args.name, context: { cluster: args.name, user: args.name } }],
        "current-context": args.name,
    }, { lineWidth: 0 });
}

/** Private addresses: .1 is Hetzner's gateway; servers from .11, agents from .101, the LB at .5. */
export function nodeAddresses(subnetCidr: string, servers: number, agents: number): {
    servers: string[]; agents: string[]; loadBalancer: string;
} {
    const [base] = subnetCidr.split("/");
    const [a, b, c] = base.split(".");
    const host = (n: number) => `${a}.${b}.${c}.${n}`;
    return {
        servers: Array.from({ length: servers }, (_, i) => host(11 + i)),
        agents: Array.from({ length: agents }, (_, i) => host(101 + i)),
        loadBalancer: host(5),
    };
}
