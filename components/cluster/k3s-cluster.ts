// An HA k3s cluster on Hetzner Cloud. Servers boot with user-data that only
// prepares them (no secret: Hetzner serves user-data unauthenticated); their
// k3s configuration, with the join tokens, is applied over SSH, one server at
// a time, for the cluster's whole life. Pulumi reaches the cluster with a
// ServiceAccount token (no 365-day expiry) under a stable cluster identifier.
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { stringify } from "yaml";
import type { HetznerClusterSettings } from "../config";
import { HetznerNetwork } from "./hetzner-network";
import { k3sConfig, K3sNodeSpec, nodeAddresses, remoteScript, renderUserData, serverArch, tokenKubeconfig } from "./k3s-render";

export interface K3sClusterArgs {
    readonly settings: HetznerClusterSettings;
    readonly stack: string;
}

export interface NodeInfo {
    readonly name: string;
    readonly role: "server" | "agent";
    readonly privateIp: string;
    readonly publicIpv4: pulumi.Output<string>;
}

/** Settings a running server must never be replaced for; upgrades go through the system-upgrade-controller. */
export const SERVER_IGNORED_CHANGES = ["userData", "image", "sshKeys"];
/** The kube-system Secret k3s reads its etcd snapshot S3 settings from. */
export const ETCD_S3_SECRET = "k3s-etcd-snapshot-s3-config";

/**
 * The Kubernetes provider's cluster identifier: pulumi-kubernetes replaces its
 * provider (and so every in-cluster object) when the cluster in its kubeconfig
 * changes, unless this identifier stays the same (v4.32.0
 * provider/pkg/provider/provider.go `DiffConfig`). A new API endpoint or a
 * rotated token is the same cluster.
 */
export function clusterIdentifier(stack: string, clusterName: string): string {
    return `hetzner-k3s/${stack}/${clusterName}`;
}

/**
 * The order servers get a changed config: every other server first, the first
 * server last, so at its bootstrap the first server is already running when the
 * others join it, and later each change reaches one server at a time.
 */
export function rolloutOrder(serverCount: number): number[] {
    return [...Array.from({ length: serverCount - 1 }, (_, i) => i + 1), 0];
}

export class K3sCluster extends pulumi.ComponentResource {
    readonly network: HetznerNetwork;
    readonly servers: hcloud.Server[];
    readonly agents: hcloud.Server[];
    readonly nodes: NodeInfo[];
    /** https://host:6443 the kubeconfig points at. */
    readonly apiEndpoint: pulumi.Output<string>;
    /** Kubeconfig with the platform's ServiceAccount token (secret). */
    readonly kubeconfig: pulumi.Output<string>;
    readonly provider: k8s.Provider;
    readonly hcloudProvider: hcloud.Provider;
    readonly sshPrivateKey: pulumi.Output<string>;
    /** The load balancer's address on the private network, when there is one. */
    readonly loadBalancerPrivateIp?: string;

    constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cluster:K3sCluster", name, {}, opts);
        const s = args.settings;
        const labels = { cluster: s.name, stack: args.stack, "managed-by": "pulumi" };

        this.hcloudProvider = new hcloud.Provider(`${name}-hcloud`, { token: s.hcloudToken }, { parent: this });
        const child = { parent: this, provider: this.hcloudProvider };
        const addresses = nodeAddresses(s.subnetCidr, s.controlPlane.count, s.agents.count);

        this.network = new HetznerNetwork(name, {
            clusterName: s.name,
            location: s.location,
            networkZone: s.networkZone,
            networkCidr: s.networkCidr,
            subnetCidr: s.subnetCidr,
            adminCidrs: s.adminCidrs,
            agentCount: s.agents.count,
            loadBalancer: s.loadBalancer.enabled
                ? { type: s.loadBalancer.type, privateIp: addresses.loadBalancer, api: s.loadBalancer.api }
                : undefined,
            protection: s.protection,
            labels,
            provider: this.hcloudProvider,
        }, { parent: this });
        this.sshPrivateKey = this.network.sshPrivateKey;
        this.loadBalancerPrivateIp = s.loadBalancer.enabled ? addresses.loadBalancer : undefined;

        const serverToken = new random.RandomPassword(`${name}-token`, { length: 48, special: false }, { parent: this });
        // Agents join with their own token, which cannot join a server (an etcd member).
        const agentToken = new random.RandomPassword(`${name}-agent-token`, { length: 48, special: false }, { parent: this });

        // Primary IPs exist before the servers, so every address can go into tls-san
        // and a replaced server keeps its address.
        const primaryIp = (nodeName: string) => new hcloud.PrimaryIp(`${nodeName}-ipv4`, {
            name: `${nodeName}-ipv4`,
            type: "ipv4",
            assigneeType: "server",
            location: s.location,
            autoDelete: false,
            deleteProtection: s.protection,
            labels,
        }, child);
        const serverNames = addresses.servers.map((_, i) => `${s.name}-server-${i + 1}`);
        const agentNames = addresses.agents.map((_, i) => `${s.name}-agent-${i + 1}`);
        const serverIps = serverNames.map(primaryIp);
        const agentIps = agentNames.map(primaryIp);

        const tlsSans = pulumi.all([
            ...serverIps.map((ip) => ip.ipAddress),
            ...(this.network.loadBalancerIpv4 ? [this.network.loadBalancerIpv4] : []),
        ]).apply((publicIps) => [
            ...addresses.servers,
            ...publicIps,
            ...(s.loadBalancer.enabled ? [addresses.loadBalancer] : []),
            ...(s.apiHostname ? [s.apiHostname] : []),
        ]);

        const makeServer = (nodeName: string, role: "server" | "agent", privateIp: string, ip: hcloud.PrimaryIp, placementGroup: hcloud.PlacementGroup) => {
            const serverType = role === "server" ? s.controlPlane.serverType : s.agents.serverType;
            return new hcloud.Server(nodeName, {
                name: nodeName,
                serverType,
                image: s.serverImage,
                location: s.location,
                sshKeys: [this.network.sshKey.id],
                firewallIds: [this.network.firewall.id.apply(Number)],
                placementGroupId: placementGroup.id.apply(Number),
                networks: [{ networkId: this.network.networkId, ip: privateIp }],
                publicNets: [{ ipv4Enabled: true, ipv4: ip.id.apply(Number), ipv6Enabled: true }],
                userData: renderUserData({ role, k3sVersion: s.k3sVersion, arch: serverArch(serverType) }),
                labels: { ...labels, role },
                deleteProtection: s.protection,
                rebuildProtection: s.protection,
            }, {
                ...child,
                dependsOn: [this.network.subnet],
                // A user-data or image edit must never rebuild a running node (and its etcd member).
                ignoreChanges: SERVER_IGNORED_CHANGES,
                // Its name, primary IP and private IP are held until the old server is gone.
                deleteBeforeReplace: true,
            });
        };
        this.servers = serverNames.map((n, i) => makeServer(n, "server", addresses.servers[i], serverIps[i], this.network.serverPlacementGroup));
        this.agents = agentNames.map((n, i) => makeServer(n, "agent", addresses.agents[i], agentIps[i], this.network.agentPlacementGroup(i)));
        this.nodes = [
            ...serverNames.map((n, i): NodeInfo => ({ name: n, role: "server", privateIp: addresses.servers[i], publicIpv4: serverIps[i].ipAddress })),
            ...agentNames.map((n, i): NodeInfo => ({ name: n, role: "agent", privateIp: addresses.agents[i], publicIpv4: agentIps[i].ipAddress })),
        ];

        // ---- k3s configuration over SSH
        const connection = (host: pulumi.Input<string>) => ({
            host,
            user: "root",
            privateKey: this.network.sshPrivateKey,
            // A new server may still be booting: keep dialling for a few minutes.
            dialErrorLimit: 60,
            perDialTimeout: 10,
        });
        // Where joiners find the cluster: the API on the load balancer if it has it, then every server.
        const joinCandidates = (self: string) => [
            ...(s.loadBalancer.enabled && s.loadBalancer.api ? [addresses.loadBalancer] : []),
            ...addresses.servers.filter((a) => a !== self),
        ];
        const s3ConfigSecret = s.etcdSnapshots.s3 ? ETCD_S3_SECRET : undefined;
        const nodeConfig = (role: "server" | "agent", index: number): pulumi.Output<string> => {
            const ip = role === "server" ? serverIps[index] : agentIps[index];
            const nodeName = role === "server" ? serverNames[index] : agentNames[index];
            const privateIp = role === "server" ? addresses.servers[index] : addresses.agents[index];
            const yaml = (spec: K3sNodeSpec) => stringify(k3sConfig(spec), { lineWidth: 0 });
            // An agent's config holds only the agent token: it never waits for (or depends on) the server token.
            return pulumi.secret(role === "server"
                ? pulumi.all([serverToken.result, agentToken.result, ip.ipAddress, tlsSans]).apply(([server, agent, publicIpv4, sans]) => yaml({
                    role, nodeName, privateIp, publicIpv4,
                    token: server,
                    agentToken: agent,
                    tlsSans: sans,
                    etcdSnapshots: { schedule: s.etcdSnapshots.schedule, retention: s.etcdSnapshots.retention, s3ConfigSecret },
                    nodeLabels: { "platform.io/role": role },
                }))
                : pulumi.all([agentToken.result, ip.ipAddress]).apply(([agent, publicIpv4]) => yaml({
                    role, nodeName, privateIp, publicIpv4,
                    token: agent,
                    tlsSans: [],
                    nodeLabels: { "platform.io/role": role },
                })));
        };
        const applyConfig = (resourceName: string, role: "server" | "agent", index: number, extraArgs: string[], dependsOn: pulumi.Resource[], once = false) => {
            const node = role === "server" ? this.servers[index] : this.agents[index];
            const ip = role === "server" ? serverIps[index] : agentIps[index];
            const nodeName = role === "server" ? serverNames[index] : agentNames[index];
            const privateIp = role === "server" ? addresses.servers[index] : addresses.agents[index];
            return new command.remote.Command(resourceName, {
                connection: connection(ip.ipAddress),
                create: remoteScript("k3s-apply-config.sh", [role, nodeName, privateIp, ...extraArgs, ...joinCandidates(privateIp)]),
                stdin: nodeConfig(role, index),
                // The script logs progress on stderr and never prints the config.
                logging: "stderr",
                // A replaced server gets its config again.
                triggers: [node.id],
            }, {
                parent: this,
                dependsOn: [node, ...dependsOn],
                // The bootstrap runs once in the cluster's life; later changes go through the rolling apply.
                ...(once ? { ignoreChanges: ["connection", "create", "stdin", "triggers"] } : {}),
            });
        };

        const bootstrap = applyConfig(`${name}-bootstrap`, "server", 0, ["--cluster-init"], [], true);
        let previous: pulumi.Resource = bootstrap;
        const serverApplies: command.remote.Command[] = [];
        for (const i of rolloutOrder(serverNames.length)) {
            previous = applyConfig(`${serverNames[i]}-k3s-config`, "server", i, [], [previous]);
            serverApplies.push(previous as command.remote.Command);
        }
        const agentApplies = agentNames.map((n, i) => applyConfig(`${n}-k3s-config`, "agent", i, [], [previous]));

        // ---- how Pulumi reaches the API
        const lbIpv4 = this.network.loadBalancerIpv4;
        const runningServer = runningServerAddress(s.name, serverIps, this.hcloudProvider);
        const apiHost: pulumi.Output<string> = s.apiHostname !== undefined
            ? pulumi.output(s.apiHostname)
            : lbIpv4 !== undefined && s.loadBalancer.api ? lbIpv4 : runningServer;
        this.apiEndpoint = pulumi.interpolate`https://${apiHost}:6443`;

        const credential = new command.remote.Command(`${name}-credential`, {
            connection: connection(runningServer),
            create: remoteScript("k3s-credential.sh", [String(s.credentialVersion)]),
            logging: "none",
            triggers: [s.credentialVersion],
        }, {
            parent: this,
            dependsOn: serverApplies,
            additionalSecretOutputs: ["stdout"],
            // Issued once per credentialVersion, on whichever server runs then.
            ignoreChanges: ["connection"],
        });
        this.kubeconfig = pulumi.secret(pulumi.all([credential.stdout, this.apiEndpoint]).apply(([out, server]) => {
            const { token, caData } = JSON.parse(out) as { token: string; caData: string };
            return tokenKubeconfig({ server, caData, token: Buffer.from(token, "base64").toString("utf8"), name: s.name });
        }));
        this.provider = new k8s.Provider(`${name}-k8s`, {
            kubeconfig: this.kubeconfig,
            clusterIdentifier: clusterIdentifier(args.stack, s.name),
        }, { parent: this, dependsOn: agentApplies });

        const s3 = s.etcdSnapshots.s3;
        if (s3) {
            // Keys as k3s reads them (`--etcd-s3-config-secret`); the secret key never reaches a node's disk or command line.
            new k8s.core.v1.Secret(`${name}-etcd-s3`, {
                metadata: { name: ETCD_S3_SECRET, namespace: "kube-system" },
                type: "etcd.k3s.cattle.io/s3-config-secret",
                stringData: {
                    "etcd-s3-endpoint": s3.endpoint,
                    "etcd-s3-bucket": s3.bucket,
                    "etcd-s3-folder": s3.folder,
                    "etcd-s3-region": s3.region,
                    "etcd-s3-access-key": s3.accessKey,
                    "etcd-s3-secret-key": pulumi.secret(s3.secretKey),
                },
            }, { parent: this, provider: this.provider });
        }

        this.registerOutputs({
            apiEndpoint: this.apiEndpoint,
            kubeconfig: this.kubeconfig,
            servers: this.nodes.map((n) => ({ name: n.name, role: n.role, privateIp: n.privateIp, publicIpv4: n.publicIpv4 })),
        });
    }
}

/**
 * The public address of the first server (by name) that Hetzner reports
 * running, read at every `pulumi up`; the first server's before any exists.
 * So a lost or stopped server-1 does not cut Pulumi off from the cluster.
 */
function runningServerAddress(clusterName: string, serverIps: hcloud.PrimaryIp[], provider: hcloud.Provider): pulumi.Output<string> {
    const running = hcloud.getServersOutput({ withSelector: `cluster=${clusterName},role=server`, withStatuses: ["running"] }, { provider });
    return pulumi.all([running.servers, serverIps[0].ipAddress]).apply(([servers, first]) => {
        const sorted = [...(servers ?? [])].sort((a, b) => a.name.localeCompare(b.name));
        return sorted[0]?.ipv4Address || first;
    });
}
