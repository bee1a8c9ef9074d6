// Refuses topology edits that would break a running cluster, before any
// resource is registered: the program reads what the Hetzner project holds
// (servers and network of this cluster) and compares it with the settings.
// Pulumi would otherwise re-address every node under etcd (a new network or
// subnet), move the cluster (a new location), delete etcd members without
// removing them (fewer servers), or power off every server at once (a new
// server type for all).
import * as hcloud from "@pulumi/hcloud";
import type { ConfigProblem } from "../config-schema";
import type { HetznerClusterSettings } from "../config";
import { ConfigError, parseIpv4Cidr } from "../config";

export interface LiveServer {
    readonly name: string;
    readonly serverType: string;
    readonly location: string;
    readonly role?: string;
    readonly privateIps: readonly string[];
}

export interface LiveTopology {
    readonly servers: readonly LiveServer[];
    /** The ip range of the cluster's network, if it exists. */
    readonly networkCidr?: string;
}

const RUNBOOK = "docs/operations.md";

function inCidr(ip: string, cidr: string): boolean {
    const net = parseIpv4Cidr(cidr);
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
    if (!net || !m) return false;
    const address = m.slice(1).map(Number).reduce((acc, o) => acc * 256 + o, 0);
    const size = 2 ** (32 - net.prefix);
    return Math.floor(address / size) === Math.floor(net.network / size);
}

/** What is wrong with applying `s` to the live cluster; empty for a new cluster or a safe edit. */
export function topologyProblems(s: HetznerClusterSettings, live: LiveTopology): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const add = (key: string, message: string, fix: string) => problems.push({ key: `platform:${key}`, message, fix });
    if (live.networkCidr !== undefined && live.networkCidr !== s.networkCidr) {
        add("networkCidr", `the cluster's network is ${live.networkCidr}; a new range would re-create the network and re-address every node under etcd. `
            + `To move a cluster to another range, build a new one and migrate (${RUNBOOK}, "Destroy and rebuild")`,
            `pulumi config set platform:networkCidr ${live.networkCidr}`);
    }
    const servers = live.servers.filter((x) => x.role === "server");
    const outside = live.servers.flatMap((x) => x.privateIps.filter((ip) => !inCidr(ip, s.subnetCidr)).map((ip) => `${x.name} (${ip})`));
    if (outside.length > 0) {
        const current = live.servers.flatMap((x) => x.privateIps)[0];
        const [a, b, c] = current.split(".");
        add("subnetCidr", `nodes are addressed outside ${s.subnetCidr}: ${outside.join(", ")}; a new subnet would re-address every node under etcd`,
            `pulumi config set platform:subnetCidr ${a}.${b}.${c}.0/24`);
    }
    const elsewhere = live.servers.filter((x) => x.location !== s.location);
    if (elsewhere.length > 0) {
        add("location", `the cluster runs in ${elsewhere[0].location}; a new location would replace every server and its etcd data. `
            + `Build a new cluster there and migrate (${RUNBOOK}, "Destroy and rebuild")`,
            `pulumi config set platform:location ${elsewhere[0].location}`);
    }
    if (servers.length > s.controlPlane.count) {
        const removed = servers.map((x) => x.name).sort().slice(s.controlPlane.count);
        add("controlPlaneCount", `${servers.length} servers run; lowering it to ${s.controlPlane.count} would delete ${removed.join(", ")} without removing `
            + `their etcd members, and etcd could lose quorum. Remove servers one at a time as ${RUNBOOK} "Remove a server" says, then lower the count`,
            `pulumi config set platform:controlPlaneCount ${servers.length}`);
    }
    const resized = servers.filter((x) => x.serverType !== s.controlPlane.serverType);
    if (servers.length > 1 && resized.length === servers.length) {
        add("controlPlaneServerType", `every server is ${resized[0].serverType}; changing all of them in one \`pulumi up\` powers them off together and the API goes down. `
            + `Resize one server at a time (${RUNBOOK}, "Resize the servers"), then set the new type`,
            `pulumi config set platform:controlPlaneServerType ${resized[0].serverType}`);
    }
    return problems;
}

/** The cluster's servers and network as Hetzner reports them now (the default hcloud provider: hcloud:token or HCLOUD_TOKEN). */
export async function readLiveTopology(clusterName: string): Promise<LiveTopology> {
    const [servers, networks] = await Promise.all([
        hcloud.getServers({ withSelector: `cluster=${clusterName}` }),
        hcloud.getNetworks({ withSelector: `cluster=${clusterName}` }),
    ]);
    return {
        servers: (servers.servers ?? []).map((x) => ({
            name: x.name,
            serverType: x.serverType,
            location: x.location,
            role: x.labels?.role,
            privateIps: (x.networks ?? []).map((n) => n.ip),
        })),
        networkCidr: networks.networks?.[0]?.ipRange,
    };
}

/** Throws a ConfigError (as bad config does) when the settings would break the running cluster. */
export async function refuseBreakingTopologyEdits(s: HetznerClusterSettings): Promise<void> {
    const problems = topologyProblems(s, await readLiveTopology(s.name));
    if (problems.length > 0) throw new ConfigError(problems);
}
