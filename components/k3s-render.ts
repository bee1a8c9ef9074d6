// Pure renderers for k3s nodes: /etc/rancher/k3s/config.yaml, the cloud-init
// user-data that writes it and installs the pinned k3s, and the kubeconfig
// rewrite. No Pulumi here: tests and the offline render call these directly.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";

/** Where our shipped shell scripts live (real files, so shellcheck sees what runs). */
export const SCRIPTS_DIR = path.join(__dirname, "..", "scripts");

export function readScript(name: string): string {
    return fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
}

/** k3s's own pod and service ranges; the private network must not overlap them. */
export const CLUSTER_CIDR = "10.42.0.0/16";
export const SERVICE_CIDR = "10.43.0.0/16";

export interface EtcdSnapshotSpec {
    readonly schedule: string;
    readonly retention: number;
    readonly s3?: {
        readonly endpoint: string;
        readonly bucket: string;
        readonly folder: string;
        readonly region: string;
        readonly accessKey: string;
        readonly secretKey: string;
    };
}

export interface K3sNodeSpec {
    readonly role: "server" | "agent";
    readonly nodeName: string;
    readonly privateIp: string;
    readonly publicIpv4: string;
    /** Exactly one server in a cluster initialises etcd. */
    readonly clusterInit: boolean;
    /** Private address of the server this node joins; absent for the cluster-init server. */
    readonly joinAddress?: string;
    readonly token: string;
    readonly k3sVersion: string;
    /** Servers only: every name and address the API is reached by. */
    readonly tlsSans: readonly string[];
    /** Servers only. */
    readonly etcdSnapshots?: EtcdSnapshotSpec;
    readonly nodeLabels: Readonly<Record<string, string>>;
}

/** The k3s configuration file for one node, as a plain object (YAML-ready). */
export function k3sConfig(spec: K3sNodeSpec): Record<string, unknown> {
    if (spec.clusterInit && spec.joinAddress) {
        throw new Error(`${spec.nodeName}: a cluster-init server cannot also join ${spec.joinAddress}`);
    }
    if (!spec.clusterInit && !spec.joinAddress) {
        throw new Error(`${spec.nodeName}: a node that does not initialise the cluster needs a join address`);
    }
    if (spec.role === "agent" && spec.clusterInit) {
        throw new Error(`${spec.nodeName}: an agent cannot initialise the cluster`);
    }
    const common: Record<string, unknown> = {
        token: spec.token,
        ...(spec.joinAddress ? { server: `https://${spec.joinAddress}:6443` } : {}),
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
        ...(spec.clusterInit ? { "cluster-init": true } : {}),
        ...common,
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
            ...(snapshots.s3 ? {
                "etcd-s3": true,
                "etcd-s3-endpoint": snapshots.s3.endpoint,
                "etcd-s3-bucket": snapshots.s3.bucket,
                "etcd-s3-folder": snapshots.s3.folder,
                "etcd-s3-region": snapshots.s3.region,
                "etcd-s3-access-key": snapshots.s3.accessKey,
                "etcd-s3-secret-key": snapshots.s3.secretKey,
            } : {}),
        } : {}),
    };
}

/** cloud-init user-data for one node: writes the k3s config and installs k3s. */
export function renderUserData(spec: K3sNodeSpec): string {
    const installArgs = [spec.role, spec.k3sVersion, spec.privateIp, ...(spec.joinAddress ? [spec.joinAddress] : [])];
    const cloudConfig = {
        // Servers must not change under a running cluster: packages are upgraded
        // deliberately, k3s by the system-upgrade-controller.
        package_update: false,
        package_upgrade: false,
        ssh_pwauth: false,
        disable_root: false,
        write_files: [
            {
                path: "/etc/rancher/k3s/config.yaml",
                owner: "root:root",
                permissions: "0600",
                content: stringify(k3sConfig(spec), { lineWidth: 0 }),
            },
            {
                path: "/usr/local/sbin/k3s-install.sh",
                owner: "root:root",
                permissions: "0755",
                content: readScript("k3s-install.sh"),
            },
        ],
        runcmd: [["/usr/local/sbin/k3s-install.sh", ...installArgs]],
    };
    return `#cloud-config\n${stringify(cloudConfig, { lineWidth: 0 })}`;
}

/** Points a k3s kubeconfig (which says https://127.0.0.1:6443) at the real endpoint. */
export function rewriteKubeconfigServer(kubeconfig: string, server: string, contextName: string): string {
    const doc: unknown = parse(kubeconfig);
    if (!isRecord(doc) || !Array.isArray(doc.clusters) || doc.clusters.length === 0) {
        throw new Error("kubeconfig has no clusters; is k3s running on the first server?");
    }
    for (const entry of doc.clusters) {
        if (isRecord(entry) && isRecord(entry.cluster)) entry.cluster.server = server;
    }
    // Rename k3s's generic "default" names so the file merges cleanly into ~/.kube/config.
    renameEntries(doc, "clusters", contextName);
    renameEntries(doc, "users", contextName);
    renameEntries(doc, "contexts", contextName);
    if (Array.isArray(doc.contexts)) {
        for (const entry of doc.contexts) {
            if (isRecord(entry) && isRecord(entry.context)) {
                entry.context.cluster = contextName;
                entry.context.user = contextName;
            }
        }
    }
    doc["current-context"] = contextName;
    return stringify(doc, { lineWidth: 0 });
}

function renameEntries(doc: Record<string, unknown>, key: string, name: string): void {
    const list = doc[key];
    if (Array.isArray(list)) for (const entry of list) if (isRecord(entry)) entry.name = name;
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
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
