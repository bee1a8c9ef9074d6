// Rules for what is reachable from outside.
import type { ResourceValidationPolicy } from "@pulumi/policy";

const WORLD = new Set(["0.0.0.0/0", "::/0"]);
const ADMIN_PORTS = ["22", "6443"];

export const noWorldOpenAdminPorts: ResourceValidationPolicy = {
    name: "no-world-open-admin-ports",
    description: "Hetzner firewalls never open SSH (22) or the Kubernetes API (6443) to the whole internet.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Allow only your networks: pulumi config set --path 'platform:adminCidrs[0]' <your office or VPN CIDR>.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/firewall:Firewall") return;
        const rules = (args.props.rules ?? []) as { direction?: string; port?: string; sourceIps?: string[] }[];
        for (const rule of rules) {
            if (rule.direction !== "in" || !ADMIN_PORTS.includes(String(rule.port))) continue;
            if ((rule.sourceIps ?? []).some((ip) => WORLD.has(ip))) reportViolation(`an inbound rule opens port ${String(rule.port)} to the whole internet`);
        }
    },
};

export const noLoadBalancerServices: ResourceValidationPolicy = {
    name: "no-load-balancer-services",
    description: "No Service is of type LoadBalancer or NodePort: the cloud controller's load balancers would outlive Pulumi.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Use a ClusterIP Service behind the ingress controller (an Ingress with a host); the Hetzner load balancer is a Pulumi resource (platform:loadBalancer).",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:core/v1:Service") return;
        const type = (args.props.spec as { type?: string } | undefined)?.type;
        if (type === "LoadBalancer" || type === "NodePort") reportViolation(`the Service is of type ${type}`);
    },
};

export const ingressTls: ResourceValidationPolicy = {
    name: "ingress-tls",
    description: "An Ingress that names a host serves it over TLS (advisory: a stack may run with tls off on purpose).",
    enforcementLevel: "advisory",
    severity: "medium",
    remediationSteps: "pulumi config set platform:tls letsencrypt (and platform:acmeEmail); the app's Ingress then gets a certificate.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:networking.k8s.io/v1:Ingress") return;
        const spec = (args.props.spec ?? {}) as { rules?: { host?: string }[]; tls?: { hosts?: string[] }[] };
        const covered = new Set((spec.tls ?? []).flatMap((t) => t.hosts ?? []));
        const bare = (spec.rules ?? []).filter((r) => r.host && !covered.has(r.host)).length;
        if (bare > 0) reportViolation(`${bare} host(s) are served without TLS`);
    },
};

export const EXPOSURE_POLICIES = [noWorldOpenAdminPorts, noLoadBalancerServices, ingressTls];
