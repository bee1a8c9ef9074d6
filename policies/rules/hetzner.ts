// Rules for the Hetzner resources and the charts the cluster runs.
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";

export const serversInPlacementGroups: ResourceValidationPolicy = {
    name: "servers-in-placement-groups",
    description: "Every server is in a spread placement group, so one host failure takes at most one node.",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Give the server a placementGroupId of a placement group of type spread (the platform creates one for servers and one per 10 agents).",
    validateResource: (args, reportViolation) => {
        if (args.type === "hcloud:index/server:Server" && args.props.placementGroupId === undefined) reportViolation("the server is in no placement group");
    },
};

export const serversIgnoreBootInputs: ResourceValidationPolicy = {
    name: "servers-ignore-boot-inputs",
    description: "Servers ignore changes to their user-data and image, which the provider would otherwise answer by rebuilding them with their etcd data.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "ignoreChanges: [\"userData\", \"image\"] on every server; change a node's software with the SSH-applied config or by replacing one node at a time.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/server:Server") return;
        const missing = ["userData", "image"].filter((p) => !args.opts.ignoreChanges.includes(p));
        if (missing.length > 0) reportViolation(`the server does not ignore changes to ${missing.join(" and ")}`);
    },
};

export const pinnedCharts: ResourceValidationPolicy = {
    name: "pinned-charts",
    description: "Every Helm chart, installed by k3s's HelmChart or by a Helm release, names its version.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Set the chart version (components/versions.ts holds the pins).",
    validateResource: (args, reportViolation) => {
        const version = args.type === "kubernetes:helm.cattle.io/v1:HelmChart" ? (args.props.spec as { version?: string } | undefined)?.version
            : args.type === "kubernetes:helm.sh/v3:Release" ? (args.props.version as string | undefined) : "not a chart";
        if (!version) reportViolation("the chart's version is not pinned");
    },
};

export const oddControlPlane: StackValidationPolicy = {
    name: "odd-control-plane",
    description: "The cluster has an odd number of k3s servers, so etcd keeps a majority when one is lost.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "pulumi config set platform:controlPlaneCount 3 (1, 3, 5 or 7).",
    validateStack: (args, reportViolation) => {
        const servers = args.resources.filter((r) => r.type === "hcloud:index/server:Server" && (r.props.labels as { role?: string } | undefined)?.role === "server");
        if (servers.length > 0 && servers.length % 2 === 0) reportViolation(`the stack has ${servers.length} k3s servers, an even count`);
    },
};

/** The Hetzner resources that take labels (sub-resources such as subnets and LB services have none). */
const LABELLED_TYPES = new Set(["Server", "PrimaryIp", "Network", "Firewall", "PlacementGroup", "LoadBalancer", "SshKey", "Volume"].map((t) => `hcloud:index/${t[0].toLowerCase()}${t.slice(1)}:${t}`));

export const hetznerLabels: ResourceValidationPolicy = {
    name: "hetzner-labels",
    description: "Every Hetzner resource that takes labels carries cluster, stack and managed-by, so it can be found, billed and cleaned up.",
    enforcementLevel: "advisory",
    severity: "low",
    remediationSteps: "Add labels { cluster: <clusterName>, stack: <stack>, \"managed-by\": \"pulumi\" } to the resource.",
    validateResource: (args, reportViolation) => {
        if (!LABELLED_TYPES.has(args.type)) return;
        const labels = (args.props.labels ?? {}) as Record<string, unknown>;
        const missing = ["cluster", "stack", "managed-by"].filter((k) => !labels[k]);
        if (missing.length > 0) reportViolation(`labels lack ${missing.join(", ")}`);
    },
};

export const serverUpgradesOneAtATime: ResourceValidationPolicy = {
    name: "server-upgrades-one-at-a-time",
    description: "The k3s upgrade Plan for servers upgrades one server at a time, so etcd keeps its majority during an upgrade.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Set concurrency: 1 on the Plan that selects control-plane nodes.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:upgrade.cattle.io/v1:Plan") return;
        const spec = (args.props.spec ?? {}) as { concurrency?: number; nodeSelector?: { matchExpressions?: { key?: string; operator?: string }[] } };
        const forServers = (spec.nodeSelector?.matchExpressions ?? []).some((e) => e.key === "node-role.kubernetes.io/control-plane" && e.operator !== "DoesNotExist");
        if (forServers && spec.concurrency !== 1) reportViolation("the servers' upgrade Plan does not have concurrency 1");
    },
};

/** The stack a URN belongs to (urn:pulumi:<stack>::<project>::...). */
export const stackOfUrn = (urn: string) => urn.split("::")[0].slice("urn:pulumi:".length);

const DEFAULT_PROTECTED_STACKS = ["prod"];
const PROTECTED_TYPES: Readonly<Record<string, readonly string[]>> = {
    "hcloud:index/server:Server": ["deleteProtection", "rebuildProtection"],
    "hcloud:index/primaryIp:PrimaryIp": ["deleteProtection"],
    "hcloud:index/floatingIp:FloatingIp": ["deleteProtection"],
    "hcloud:index/network:Network": ["deleteProtection"],
    "hcloud:index/loadBalancer:LoadBalancer": ["deleteProtection"],
};

export const protectedInfrastructure: ResourceValidationPolicy = {
    name: "protected-infrastructure",
    description: "In a protected stack, servers, IPs, the network and the load balancer have Hetzner's delete (and, for servers, rebuild) protection, so no console click, script or stray API call removes production.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "pulumi config set platform:protection true on the stack; the policy's protectedStacks lists which stacks this applies to.",
    configSchema: {
        properties: { protectedStacks: { type: "array", items: { type: "string" }, default: DEFAULT_PROTECTED_STACKS, description: "Stacks whose infrastructure must be protected." } },
    },
    validateResource: (args, reportViolation) => {
        const flags = PROTECTED_TYPES[args.type];
        const stacks = args.getConfig<{ protectedStacks?: string[] }>().protectedStacks ?? DEFAULT_PROTECTED_STACKS;
        if (!flags || !stacks.includes(stackOfUrn(args.urn))) return;
        const missing = flags.filter((f) => args.props[f] !== true);
        if (missing.length > 0) reportViolation(`a protected stack's resource lacks ${missing.join(" and ")}`);
    },
};

/** The k3s version a server's cloud-init installs (the node-prepare.sh argument in runcmd). */
const INSTALLED_VERSION = /^\s*-\s*(v\d+\.\d+\.\d+\+k3s\d+)\s*$/m;

export const upgradePlansMatchInstall: StackValidationPolicy = {
    name: "upgrade-plans-match-install",
    description: "The k3s upgrade Plans target the version new servers install, so nodes are upgraded to the configured version and a node added or replaced later joins at that same version.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Change the version only with pulumi config set platform:k3sVersion <version>, which sets both the Plans and new servers' install; never edit a Plan's version by hand.",
    validateStack: (args, reportViolation) => {
        const installed = new Set(args.resources
            .filter((r) => r.type === "hcloud:index/server:Server" && typeof r.props.userData === "string")
            .map((r) => INSTALLED_VERSION.exec(r.props.userData as string)?.[1])
            .filter((v): v is string => v !== undefined));
        if (installed.size > 1) reportViolation(`new servers would install ${installed.size} different k3s versions`);
        for (const plan of args.resources.filter((r) => r.type === "kubernetes:upgrade.cattle.io/v1:Plan")) {
            const version = (plan.props.spec as { version?: string } | undefined)?.version;
            if (installed.size > 0 && (version === undefined || !installed.has(version))) reportViolation("the Plan's version is not the one new servers install", plan.urn);
        }
    },
};

export const HETZNER_POLICIES = [
    serversInPlacementGroups, serversIgnoreBootInputs, pinnedCharts, oddControlPlane, hetznerLabels, serverUpgradesOneAtATime,
    protectedInfrastructure, upgradePlansMatchInstall,
];
