// An HA k3s cluster on Hetzner Cloud: servers (and optional agents) booted by
// cloud-init into k3s, the admin kubeconfig read back over SSH, and a
// Kubernetes provider built from it for everything in-cluster.
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { HetznerClusterSettings } from "./config";
import { HetznerNetwork } from "./hetzner-network";
import { K3sNodeSpec, nodeAddresses, readScript, renderUserData, rewriteKubeconfigServer } from "./k3s-render";

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

export class K3sCluster extends pulumi.ComponentResource {
    readonly network: HetznerNetwork;
    readonly servers: hcloud.Server[];
    readonly agents: hcloud.Server[];
    readonly nodes: NodeInfo[];
    /** https://host:6443 the kubeconfig points at. */
    readonly apiEndpoint: pulumi.Output<string>;
    /** Admin kubeconfig (secret). */
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

        const token = new random.RandomPassword(`${name}-token`, { length: 48, special: false }, { parent: this });

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

        const lbIpv4 = this.network.loadBalancerIpv4;
        const apiHost: pulumi.Output<string> = s.apiHostname !== undefined
            ? pulumi.output(s.apiHostname)
            : lbIpv4 !== undefined && s.loadBalancer.api ? lbIpv4 : serverIps[0].ipAddress;
        this.apiEndpoint = pulumi.interpolate`https://${apiHost}:6443`;

        const tlsSans = pulumi.all([
            ...serverIps.map((ip) => ip.ipAddress),
            ...(lbIpv4 ? [lbIpv4] : []),
        ]).apply((publicIps) => [
            ...addresses.servers,
            ...publicIps,
            ...(s.loadBalancer.enabled ? [addresses.loadBalancer] : []),
            ...(s.apiHostname ? [s.apiHostname] : []),
        ]);

        const etcdSnapshots = s.etcdSnapshots;
        const s3SecretKey = pulumi.output(etcdSnapshots.s3?.secretKey ?? "");

        const makeServer = (
            nodeName: string, role: "server" | "agent", index: number, privateIp: string,
            ip: hcloud.PrimaryIp, placementGroup: hcloud.PlacementGroup,
        ): hcloud.Server => {
            const clusterInit = role === "server" && index === 0;
            const userData = pulumi.all([token.result, ip.ipAddress, tlsSans, s3SecretKey])
                .apply(([tokenValue, publicIpv4, sans, secretKey]) => {
                    const spec: K3sNodeSpec = {
                        role,
                        nodeName,
                        privateIp,
                        publicIpv4,
                        clusterInit,
                        joinAddress: clusterInit ? undefined : addresses.servers[0],
                        token: tokenValue,
                        k3sVersion: s.k3sVersion,
                        tlsSans: role === "server" ? sans : [],
                        etcdSnapshots: role === "server" ? {
                            schedule: etcdSnapshots.schedule,
                            retention: etcdSnapshots.retention,
                            s3: etcdSnapshots.s3 ? { ...etcdSnapshots.s3, secretKey } : undefined,
                        } : undefined,
                        nodeLabels: { "platform.io/role": role },
                    };
                    return renderUserData(spec);
                });
            return new hcloud.Server(nodeName, {
                name: nodeName,
                serverType: role === "server" ? s.controlPlane.serverType : s.agents.serverType,
                image: s.serverImage,
                location: s.location,
                sshKeys: [this.network.sshKey.id],
                firewallIds: [this.network.firewall.id.apply(Number)],
                placementGroupId: placementGroup.id.apply(Number),
                networks: [{ networkId: this.network.networkId, ip: privateIp }],
                publicNets: [{ ipv4Enabled: true, ipv4: ip.id.apply(Number), ipv6Enabled: true }],
                userData: pulumi.secret(userData),
                labels: { ...labels, role },
                deleteProtection: s.protection,
                rebuildProtection: s.protection,
            }, {
                ...child,
                dependsOn: [this.network.subnet],
                // A user-data or image edit must never rebuild a running node (and its etcd member).
                ignoreChanges: SERVER_IGNORED_CHANGES,
            });
        };

        this.servers = serverNames.map((n, i) =>
            makeServer(n, "server", i, addresses.servers[i], serverIps[i], this.network.serverPlacementGroup));
        this.agents = agentNames.map((n, i) =>
            makeServer(n, "agent", i, addresses.agents[i], agentIps[i], this.network.agentPlacementGroup(i)));
        this.nodes = [
            ...serverNames.map((n, i): NodeInfo => ({ name: n, role: "server", privateIp: addresses.servers[i], publicIpv4: serverIps[i].ipAddress })),
            ...agentNames.map((n, i): NodeInfo => ({ name: n, role: "agent", privateIp: addresses.agents[i], publicIpv4: agentIps[i].ipAddress })),
        ];

        // Reads the admin kubeconfig once the API is ready; output kept out of logs and state as plain text.
        const readKubeconfig = new command.remote.Command(`${name}-kubeconfig`, {
            connection: {
                host: serverIps[0].ipAddress,
                user: "root",
                privateKey: this.network.sshPrivateKey,
                // The server may still be booting: keep dialling for a few minutes.
                dialErrorLimit: 60,
                perDialTimeout: 10,
            },
            create: readScript("k3s-kubeconfig.sh"),
            logging: "none",
            triggers: [this.servers[0].id],
        }, { parent: this, dependsOn: [this.servers[0]], additionalSecretOutputs: ["stdout"] });

        this.kubeconfig = pulumi.secret(pulumi.all([readKubeconfig.stdout, this.apiEndpoint])
            .apply(([text, endpoint]) => rewriteKubeconfigServer(text, endpoint, s.name)));

        this.provider = new k8s.Provider(`${name}-k8s`, { kubeconfig: this.kubeconfig }, { parent: this });

        this.registerOutputs({
            apiEndpoint: this.apiEndpoint,
            kubeconfig: this.kubeconfig,
            servers: this.nodes.map((n) => ({ name: n.name, role: n.role, privateIp: n.privateIp, publicIpv4: n.publicIpv4 })),
        });
    }
}
