// Everything on Hetzner a cluster's servers stand in: the SSH key, private
// network, firewall, spread placement groups and the optional load balancer.
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export interface HetznerNetworkArgs {
    readonly clusterName: string;
    readonly location: string;
    readonly networkZone: string;
    readonly networkCidr: string;
    readonly subnetCidr: string;
    /** Networks allowed to reach SSH (22) and the Kubernetes API (6443). */
    readonly adminCidrs: readonly string[];
    readonly agentCount: number;
    readonly loadBalancer?: {
        readonly type: string;
        readonly privateIp: string;
        /** Also balance the Kubernetes API (6443). The LB has no firewall: this opens the API to the internet. */
        readonly api: boolean;
    };
    /** Hetzner delete protection on everything that supports it. */
    readonly protection: boolean;
    readonly labels: Readonly<Record<string, string>>;
    readonly provider: hcloud.Provider;
}

/** Hetzner limits a spread placement group to 10 servers. */
const SPREAD_GROUP_SIZE = 10;

const ANYWHERE = ["0.0.0.0/0", "::/0"];

/** Inbound rules: web traffic from anywhere, admin ports only from admin networks. */
export function firewallRules(adminCidrs: readonly string[]): hcloud.types.input.FirewallRule[] {
    // Hetzner firewalls filter only public interfaces; nodes talk freely on the private network.
    return [
        { direction: "in", protocol: "tcp", port: "80", sourceIps: ANYWHERE, description: "HTTP (redirected to HTTPS)" },
        { direction: "in", protocol: "tcp", port: "443", sourceIps: ANYWHERE, description: "HTTPS" },
        { direction: "in", protocol: "icmp", sourceIps: ANYWHERE, description: "ping and path MTU discovery" },
        { direction: "in", protocol: "tcp", port: "22", sourceIps: [...adminCidrs], description: "SSH from admin networks" },
        { direction: "in", protocol: "tcp", port: "6443", sourceIps: [...adminCidrs], description: "Kubernetes API from admin networks" },
    ];
}

export class HetznerNetwork extends pulumi.ComponentResource {
    readonly sshKey: hcloud.SshKey;
    /** OpenSSH private key for root on every node (secret). */
    readonly sshPrivateKey: pulumi.Output<string>;
    readonly network: hcloud.Network;
    readonly subnet: hcloud.NetworkSubnet;
    readonly networkId: pulumi.Output<number>;
    readonly firewall: hcloud.Firewall;
    readonly serverPlacementGroup: hcloud.PlacementGroup;
    readonly agentPlacementGroups: hcloud.PlacementGroup[];
    readonly loadBalancer?: hcloud.LoadBalancer;
    readonly loadBalancerIpv4?: pulumi.Output<string>;

    constructor(name: string, args: HetznerNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:hetzner:Network", name, {}, opts);
        const child = { parent: this, provider: args.provider };
        const labels = { ...args.labels };
        const protect = args.protection;

        const key = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, { parent: this });
        this.sshPrivateKey = pulumi.secret(key.privateKeyOpenssh);
        this.sshKey = new hcloud.SshKey(`${name}-ssh`, {
            name: `${args.clusterName}-admin`,
            publicKey: key.publicKeyOpenssh,
            labels,
        }, child);

        this.network = new hcloud.Network(`${name}-net`, {
            name: args.clusterName,
            ipRange: args.networkCidr,
            deleteProtection: protect,
            labels,
        }, child);
        this.networkId = this.network.id.apply(Number);
        this.subnet = new hcloud.NetworkSubnet(`${name}-subnet`, {
            networkId: this.networkId,
            type: "cloud",
            networkZone: args.networkZone,
            ipRange: args.subnetCidr,
        }, child);

        this.firewall = new hcloud.Firewall(`${name}-fw`, {
            name: args.clusterName,
            rules: firewallRules(args.adminCidrs),
            labels,
        }, child);

        // Spread groups put each server on a different physical host.
        this.serverPlacementGroup = new hcloud.PlacementGroup(`${name}-servers`, {
            name: `${args.clusterName}-servers`,
            type: "spread",
            labels: { ...labels, role: "server" },
        }, child);
        const agentGroups = Math.ceil(args.agentCount / SPREAD_GROUP_SIZE);
        this.agentPlacementGroups = Array.from({ length: agentGroups }, (_, i) =>
            new hcloud.PlacementGroup(`${name}-agents-${i + 1}`, {
                name: `${args.clusterName}-agents-${i + 1}`,
                type: "spread",
                labels: { ...labels, role: "agent" },
            }, child));

        if (args.loadBalancer) {
            const lb = new hcloud.LoadBalancer(`${name}-lb`, {
                name: args.clusterName,
                loadBalancerType: args.loadBalancer.type,
                location: args.location,
                deleteProtection: protect,
                labels,
            }, child);
            const lbId = lb.id.apply(Number);
            const lbNetwork = new hcloud.LoadBalancerNetwork(`${name}-lb-net`, {
                loadBalancerId: lbId,
                subnetId: this.subnet.id,
                ip: args.loadBalancer.privateIp,
            }, child);
            // Targets by label, so servers added later join the LB without an edit here.
            new hcloud.LoadBalancerTarget(`${name}-lb-nodes`, {
                loadBalancerId: lbId,
                type: "label_selector",
                labelSelector: `cluster=${args.clusterName}`,
                usePrivateIp: true,
            }, { ...child, dependsOn: [lbNetwork] });
            // TCP pass-through; each service's health check keeps traffic on nodes that serve it
            // (6443 answers only on servers, 80/443 wherever the ingress runs).
            const ports = args.loadBalancer.api ? [80, 443, 6443] : [80, 443];
            for (const port of ports) {
                new hcloud.LoadBalancerService(`${name}-lb-${port}`, {
                    loadBalancerId: lb.id,
                    protocol: "tcp",
                    listenPort: port,
                    destinationPort: port,
                    healthCheck: { protocol: "tcp", port, interval: 10, timeout: 5, retries: 3 },
                    // Traefik learns the client's address from the PROXY header (it trusts only the LB).
                    proxyprotocol: port !== 6443,
                }, child);
            }
            this.loadBalancer = lb;
            this.loadBalancerIpv4 = lb.ipv4;
        }

        this.registerOutputs({
            networkId: this.networkId,
            firewallId: this.firewall.id,
            loadBalancerIpv4: this.loadBalancerIpv4,
        });
    }

    /** Placement group for the i-th agent (0-based). */
    agentPlacementGroup(index: number): hcloud.PlacementGroup {
        return this.agentPlacementGroups[Math.floor(index / SPREAD_GROUP_SIZE)];
    }
}
