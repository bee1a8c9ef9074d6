// Stack configuration: the only interface for settings and secrets.
//
// `parseConfig` is pure: it takes the raw values Pulumi holds for a stack and
// either returns a fully typed, defaulted config or throws a ConfigError that
// lists every problem at once (key, what is wrong, and the command that fixes
// it). `loadConfig` feeds it from `pulumi.Config` and turns secret settings into
// Pulumi secrets. Nothing here registers a resource, so bad config fails before
// any resource exists.
import * as fs from "node:fs";
import { isIPv6 } from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
// Not in the SDK's typings, but the only way to know whether a key is stored encrypted.
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { boolean, ConfigProblem, cron, dnsName, editDistance, fromJson, integer, s3Endpoint } from "./config-schema";
import { APP_FIXES, AppSettings, appCrossChecks, appIssueProblems, replicasOf, IngressSettings, ingressSchemaShape, parseLabelSelector, RegistrySettings, toAppSettings } from "./apps/app-config";
import { backupBucketOf, DATABASE_FIXES, databaseCrossChecks, databaseSchemaShape, DatabaseSettings, S3Settings, toDatabaseSettings } from "./database/database-config";
import { CLUSTER_CIDR, SERVICE_CIDR } from "./cluster/k3s-render";

export type { ConfigProblem };

export const PROJECT = "platform";

/** Hetzner locations and the network zone each belongs to. */
export const LOCATION_ZONES = {
    fsn1: "eu-central",
    nbg1: "eu-central",
    hel1: "eu-central",
    ash: "us-east",
    hil: "us-west",
    sin: "ap-southeast",
} as const;
export type Location = keyof typeof LOCATION_ZONES;

const EU_LOCATIONS: readonly Location[] = ["fsn1", "nbg1", "hel1"];

/**
 * Hetzner server types we accept, with where they are sold. Shared Intel (cx)
 * and Arm (cax) types exist only in the EU; AMD (cpx) and dedicated (ccx) types
 * everywhere.
 */
export const SERVER_TYPES: Readonly<Record<string, readonly Location[] | "all">> = {
    cx23: EU_LOCATIONS, cx33: EU_LOCATIONS, cx43: EU_LOCATIONS, cx53: EU_LOCATIONS,
    cax11: EU_LOCATIONS, cax21: EU_LOCATIONS, cax31: EU_LOCATIONS, cax41: EU_LOCATIONS,
    cpx12: "all", cpx22: "all", cpx32: "all", cpx42: "all", cpx52: "all", cpx62: "all",
    cpx11: "all", cpx21: "all", cpx31: "all", cpx41: "all", cpx51: "all",
    ccx13: "all", ccx23: "all", ccx33: "all", ccx43: "all", ccx53: "all", ccx63: "all",
};

export const LOAD_BALANCER_TYPES = ["lb11", "lb21", "lb31"] as const;

/** etcd beyond 7 members costs write latency and buys no useful tolerance. */
export const MAX_CONTROL_PLANE = 7;
export const MAX_AGENTS = 100;

/** Defaults of the settings (the README's configuration reference shows the same). */
export const DEFAULTS = {
    mode: "hetzner",
    location: "fsn1",
    controlPlaneCount: 3,
    controlPlaneServerType: "cx33",
    agentCount: 0,
    agentServerType: "cx33",
    serverImage: "ubuntu-24.04",
    k3sVersion: "v1.34.6+k3s1",
    loadBalancer: false,
    loadBalancerType: "lb11",
    loadBalancerApi: false,
    protection: false,
    networkCidr: "10.0.0.0/16",
    subnetCidr: "10.0.1.0/24",
    etcdSnapshotSchedule: "0 */6 * * *",
    etcdSnapshotRetention: 20,
    clusterCredentialVersion: 1,
} as const;

export interface EtcdS3Settings extends S3Settings {
    readonly folder: string;
}

export interface HetznerClusterSettings {
    readonly name: string;
    readonly location: Location;
    readonly networkZone: string;
    readonly controlPlane: { readonly count: number; readonly serverType: string };
    readonly agents: { readonly count: number; readonly serverType: string };
    readonly serverImage: string;
    readonly k3sVersion: string;
    readonly adminCidrs: readonly string[];
    readonly loadBalancer: { readonly enabled: boolean; readonly type: string; readonly api: boolean };
    readonly apiHostname?: string;
    readonly protection: boolean;
    readonly networkCidr: string;
    readonly subnetCidr: string;
    readonly etcdSnapshots: {
        readonly schedule: string;
        readonly retention: number;
        readonly s3?: EtcdS3Settings;
    };
    readonly hcloudToken: pulumi.Input<string>;
    /** Bump to issue Pulumi a new cluster token and revoke the old one. */
    readonly credentialVersion: number;
}

export interface ExistingClusterSettings {
    readonly name: string;
    /** Kubeconfig text (secret); absent means the ambient kubeconfig. */
    readonly kubeconfig?: pulumi.Input<string>;
    readonly context?: string;
}

/** Settings every mode has: what runs on the cluster. */
export interface WorkloadSettings {
    readonly stack: string;
    readonly ingress: IngressSettings;
    readonly apps: readonly AppSettings[];
    readonly registry?: RegistrySettings;
    /** Present when an app asks for a database. */
    readonly database?: DatabaseSettings;
    /** EUR per month the offline plan may not exceed (Hetzner list prices); absent: no cap. */
    readonly monthlyCostCap?: number;
    /** The backup bucket (backupS3*): the database's dumps, WAL and base backups, and the app volumes' snapshots. */
    readonly backupBucket?: S3Settings;
}

export type PlatformConfig = WorkloadSettings & (
    | { readonly mode: "hetzner"; readonly cluster: HetznerClusterSettings }
    | { readonly mode: "existing"; readonly cluster: ExistingClusterSettings });

/** Raw values as Pulumi holds them: top-level values are strings, `--path` values are parsed. */
export interface RawConfig {
    readonly stack: string;
    /** Keys of the project namespace, without the `platform:` prefix. */
    readonly values: Readonly<Record<string, unknown>>;
    /** `hcloud:token` from config, or HCLOUD_TOKEN from the environment. */
    readonly hcloudToken?: string;
    /** Whether a `platform:` key is stored encrypted; unknown when absent. */
    readonly isSecret?: (key: string) => boolean;
    /** `hcloud:token` is in the stack file unencrypted. */
    readonly hcloudTokenInPlainText?: boolean;
    /**
     * App secrets written in plain text beside encrypted ones in the stack file
     * ("apps.api.secrets.KEY"): one `secure:` leaf makes Pulumi mark the whole
     * `apps` value secret, so only the file shows the plain ones.
     */
    readonly plainAppSecrets?: readonly string[];
    /** Config keys of other namespaces ("plattform:agentCount", "hcloud:token"): a misspelt namespace is reported. */
    readonly otherKeys?: readonly string[];
    /** Where build contexts are resolved (the project directory). */
    readonly projectDir?: string;
}

/** Paths of the app secrets in a stack file's text that are not `secure:` values. */
export function plainAppSecretsInStackFile(text: string): string[] {
    const doc: unknown = parseYaml(text);
    const config = (doc as { config?: Record<string, unknown> } | null)?.config ?? {};
    const apps = config[`${PROJECT}:apps`];
    if (typeof apps !== "object" || apps === null) return [];
    const out: string[] = [];
    for (const [name, app] of Object.entries(apps as Record<string, unknown>)) {
        const secrets = (app as { secrets?: unknown } | null)?.secrets;
        if (typeof secrets !== "object" || secrets === null) continue;
        for (const [key, value] of Object.entries(secrets as Record<string, unknown>)) {
            const encrypted = typeof value === "object" && value !== null && typeof (value as { secure?: unknown }).secure === "string";
            if (!encrypted) out.push(`apps.${name}.secrets.${key}`);
        }
    }
    return out;
}

/**
 * Credentials among the plain (not per-app) settings: refused unless stored
 * encrypted. The database URLs and app secrets are checked with their own
 * settings (database-config.ts, app-config.ts).
 */
export const PLAIN_SECRET_SETTINGS = ["registryPassword", "etcdS3SecretKey", "backupS3SecretKey", "kubeconfig"] as const;

export class ConfigError extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(formatProblems(problems));
        this.name = "ConfigError";
    }
}

/**
 * True for a ConfigError, also one thrown by another load of this module (the
 * offline render loads the program afresh for each stack).
 */
export function isConfigError(err: unknown): err is ConfigError {
    return err instanceof Error && err.name === "ConfigError" && Array.isArray((err as Partial<ConfigError>).problems);
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
    const lines = [`Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):`];
    for (const p of problems) {
        lines.push(`  - ${p.key}: ${p.message}`, `      fix: ${p.fix}`);
    }
    return lines.join("\n");
}

// The command that fixes each key, shown under its problem.
const FIXES: Record<string, string> = {
    mode: `pulumi config set ${PROJECT}:mode hetzner   # or: existing`,
    clusterName: `pulumi config set ${PROJECT}:clusterName my-cluster`,
    location: `pulumi config set ${PROJECT}:location ${DEFAULTS.location}   # one of ${Object.keys(LOCATION_ZONES).join(", ")}`,
    controlPlaneCount: `pulumi config set ${PROJECT}:controlPlaneCount 3   # 1, 3, 5 or 7`,
    controlPlaneServerType: `pulumi config set ${PROJECT}:controlPlaneServerType ${DEFAULTS.controlPlaneServerType}`,
    agentCount: `pulumi config set ${PROJECT}:agentCount 0`,
    agentServerType: `pulumi config set ${PROJECT}:agentServerType ${DEFAULTS.agentServerType}`,
    serverImage: `pulumi config set ${PROJECT}:serverImage ${DEFAULTS.serverImage}`,
    k3sVersion: `pulumi config set ${PROJECT}:k3sVersion ${DEFAULTS.k3sVersion}`,
    adminCidrs: `pulumi config set --path '${PROJECT}:adminCidrs[0]' 203.0.113.10/32   # your office or VPN address`,
    loadBalancer: `pulumi config set ${PROJECT}:loadBalancer true`,
    loadBalancerType: `pulumi config set ${PROJECT}:loadBalancerType ${DEFAULTS.loadBalancerType}`,
    loadBalancerApi: `pulumi config set ${PROJECT}:loadBalancerApi false`,
    apiHostname: `pulumi config set ${PROJECT}:apiHostname k8s.example.com`,
    protection: `pulumi config set ${PROJECT}:protection true`,
    networkCidr: `pulumi config set ${PROJECT}:networkCidr ${DEFAULTS.networkCidr}`,
    subnetCidr: `pulumi config set ${PROJECT}:subnetCidr ${DEFAULTS.subnetCidr}`,
    etcdSnapshotSchedule: `pulumi config set ${PROJECT}:etcdSnapshotSchedule '${DEFAULTS.etcdSnapshotSchedule}'`,
    etcdSnapshotRetention: `pulumi config set ${PROJECT}:etcdSnapshotRetention ${DEFAULTS.etcdSnapshotRetention}`,
    etcdS3Bucket: `pulumi config set ${PROJECT}:etcdS3Bucket my-etcd-snapshots`,
    etcdS3Endpoint: `pulumi config set ${PROJECT}:etcdS3Endpoint fsn1.your-objectstorage.com`,
    etcdS3Folder: `pulumi config set ${PROJECT}:etcdS3Folder etcd`,
    etcdS3Region: `pulumi config set ${PROJECT}:etcdS3Region fsn1`,
    etcdS3AccessKey: `pulumi config set ${PROJECT}:etcdS3AccessKey <access key>`,
    etcdS3SecretKey: `pulumi config set --secret ${PROJECT}:etcdS3SecretKey <secret key>`,
    clusterCredentialVersion: `pulumi config set ${PROJECT}:clusterCredentialVersion 2   # one more than now`,
    kubeconfig: `pulumi config set --secret ${PROJECT}:kubeconfig "$(cat ~/.kube/config)"`,
    kubeContext: `pulumi config set ${PROJECT}:kubeContext k3d-platform`,
    "hcloud:token": "pulumi config set --secret hcloud:token <token>   # or export HCLOUD_TOKEN",
    monthlyCostCap: `pulumi config set ${PROJECT}:monthlyCostCap 150`,
    ...APP_FIXES,
    ...DATABASE_FIXES,
};

// ---------------------------------------------------------------- schema parts

const dnsLabel = z.string().regex(/^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$/,
    "must be 1-30 lower-case letters, digits or '-', starting with a letter");

const k3sVersion = z.string().regex(/^v1\.\d{2}\.\d{1,2}\+k3s\d+$/,
    "must be a pinned k3s release such as v1.34.6+k3s1 (v<major>.<minor>.<patch>+k3s<n>)");

/** Parses "a.b.c.d/n" into a 32-bit network address and prefix, or undefined. */
export function parseIpv4Cidr(cidr: string): { network: number; prefix: number } | undefined {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    if (!m) return undefined;
    const octets = m.slice(1, 5).map(Number);
    const prefix = Number(m[5]);
    if (octets.some((o) => o > 255) || prefix > 32) return undefined;
    const address = octets.reduce((acc, o) => acc * 256 + o, 0);
    const size = 2 ** (32 - prefix);
    // Host bits set ("10.0.0.1/16") usually means a typo; ask for the network address.
    if (address % size !== 0) return undefined;
    return { network: address, prefix };
}

/** Parses an IPv6 "addr/n" into its 128-bit address and prefix, or undefined (also when host bits are set). */
export function parseIpv6Cidr(cidr: string): { network: bigint; prefix: number } | undefined {
    const m = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(cidr);
    if (!m || !isIPv6(m[1]) || Number(m[2]) > 128) return undefined;
    const [head, tail = ""] = m[1].split("::");
    const groups = (text: string) => (text === "" ? [] : text.split(":"));
    const left = groups(head);
    const right = m[1].includes("::") ? groups(tail) : [];
    const all = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
    const address = all.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
    const prefix = Number(m[2]);
    if (address % (1n << BigInt(128 - prefix)) !== 0n) return undefined;
    return { network: address, prefix };
}

/** A CIDR of prefix length 0 in any spelling (0.0.0.0/0, 0.0.0.0/00, ::/0, 0::0/0): the whole internet. */
export function isWholeInternet(cidr: string): boolean {
    return (parseIpv4Cidr(cidr)?.prefix ?? parseIpv6Cidr(cidr)?.prefix) === 0;
}

/** The private ranges (RFC 1918) Hetzner Cloud networks must use. */
const PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

const ipv4Cidr = z.string().refine((s) => parseIpv4Cidr(s) !== undefined,
    "must be an IPv4 network in CIDR form with no host bits set, such as 10.0.0.0/16");

const adminCidr = z.string().refine((s) => parseIpv4Cidr(s) !== undefined || parseIpv6Cidr(s) !== undefined,
    "must be an IPv4 or IPv6 network in CIDR form with no host bits set, such as 203.0.113.10/32 or 2001:db8::/48");

const rawSchema = z.object({
    mode: z.enum(["hetzner", "existing"], { error: "must be 'hetzner' or 'existing'" }).default(DEFAULTS.mode),
    clusterName: dnsLabel.optional(),
    location: z.enum(Object.keys(LOCATION_ZONES) as [Location, ...Location[]], {
        error: `must be a Hetzner location: ${Object.keys(LOCATION_ZONES).join(", ")}`,
    }).default(DEFAULTS.location),
    controlPlaneCount: integer(1, MAX_CONTROL_PLANE).default(DEFAULTS.controlPlaneCount),
    controlPlaneServerType: z.string().default(DEFAULTS.controlPlaneServerType),
    agentCount: integer(0, MAX_AGENTS).default(DEFAULTS.agentCount),
    agentServerType: z.string().default(DEFAULTS.agentServerType),
    serverImage: z.string().regex(/^ubuntu-2[4-9]\.04$/, "must be an Ubuntu LTS image such as ubuntu-24.04").default(DEFAULTS.serverImage),
    k3sVersion: k3sVersion.default(DEFAULTS.k3sVersion),
    adminCidrs: fromJson(z.array(adminCidr, { error: "must be a list" })).optional(),
    loadBalancer: boolean.default(DEFAULTS.loadBalancer),
    loadBalancerType: z.enum(LOAD_BALANCER_TYPES, { error: `must be one of ${LOAD_BALANCER_TYPES.join(", ")}` }).default(DEFAULTS.loadBalancerType),
    loadBalancerApi: boolean.default(DEFAULTS.loadBalancerApi),
    apiHostname: dnsName.optional(),
    protection: boolean.default(DEFAULTS.protection),
    networkCidr: ipv4Cidr.default(DEFAULTS.networkCidr),
    subnetCidr: ipv4Cidr.default(DEFAULTS.subnetCidr),
    etcdSnapshotSchedule: cron.default(DEFAULTS.etcdSnapshotSchedule),
    etcdSnapshotRetention: integer(1, 500).default(DEFAULTS.etcdSnapshotRetention),
    etcdS3Bucket: z.string().min(1).optional(),
    etcdS3Endpoint: s3Endpoint,
    etcdS3Folder: z.string().default("etcd"),
    etcdS3Region: z.string().default("fsn1"),
    etcdS3AccessKey: z.string().min(1).optional(),
    etcdS3SecretKey: z.string().min(1).optional(),
    clusterCredentialVersion: integer(1, 1_000_000).default(DEFAULTS.clusterCredentialVersion),
    kubeconfig: z.string().min(1, "is empty").optional(),
    kubeContext: z.string().min(1).optional(),
    monthlyCostCap: z.string().regex(/^\d+(\.\d{1,2})?$/, "must be an amount in EUR such as 150 or 99.50").transform(Number).optional(),
    ...ingressSchemaShape,
    ...databaseSchemaShape,
});

type RawSettings = z.infer<typeof rawSchema>;

const isConfigSecret = (runtimeConfig as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;

/** Every setting of the `platform:` namespace (the README documents each). */
export const SETTING_KEYS: readonly string[] = Object.keys(rawSchema.shape);

function cidrContains(outer: string, inner: string): boolean {
    const o = parseIpv4Cidr(outer);
    const i = parseIpv4Cidr(inner);
    if (!o || !i || i.prefix < o.prefix) return false;
    const size = 2 ** (32 - o.prefix);
    return Math.floor(i.network / size) === Math.floor(o.network / size);
}

/**
 * Checks that involve several keys. `s` holds only the keys that are valid on
 * their own, so a check runs when the keys it reads passed.
 */
function crossChecks(s: Partial<RawSettings>, raw: RawConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const add = (key: string, message: string, fix = FIXES[key]) => problems.push({ key: qualify(key), message, fix });
    if (s.mode !== "hetzner") return problems;

    if (s.controlPlaneCount !== undefined && s.controlPlaneCount % 2 === 0) {
        add("controlPlaneCount", `must be odd so etcd keeps quorum when a server fails (got ${s.controlPlaneCount}; use ${s.controlPlaneCount + 1} or ${s.controlPlaneCount - 1})`);
    }
    for (const key of ["controlPlaneServerType", "agentServerType"] as const) {
        const type = s[key];
        if (type === undefined || (key === "agentServerType" && s.agentCount === 0)) continue;
        const where = SERVER_TYPES[type];
        if (where === undefined) {
            add(key, `unknown Hetzner server type '${type}'; known: ${Object.keys(SERVER_TYPES).join(", ")}`);
        } else if (where !== "all" && s.location !== undefined && !where.includes(s.location)) {
            // Suggest the sold type nearest in price: same family letter first (cx -> cpx), else any.
            const sold = Object.entries(SERVER_TYPES).filter(([, w]) => w === "all" || w.includes(s.location as Location)).map(([t]) => t);
            const suggestion = sold.find((t) => t.startsWith("cpx") && t.endsWith(type.slice(-2))) ?? sold[0];
            add(key, `'${type}' is not sold in ${s.location}; it is available in ${where.join(", ")} (or choose a type sold there, such as ${suggestion})`,
                `pulumi config set ${PROJECT}:${key} ${suggestion}`);
        }
    }
    if (raw.values.adminCidrs === undefined) {
        add("adminCidrs", "is required in hetzner mode: SSH (22) and the Kubernetes API (6443) are open only to these networks");
    } else if (s.adminCidrs?.length === 0) {
        add("adminCidrs", "is empty: SSH (22) and the Kubernetes API (6443) would be reachable from nowhere");
    } else {
        (s.adminCidrs ?? []).forEach((c, i) => {
            if (isWholeInternet(c)) {
                add(`adminCidrs[${i}]`, "is the whole internet (a /0): it would open SSH and the Kubernetes API to everyone",
                    `pulumi config set --path '${PROJECT}:adminCidrs[${i}]' 203.0.113.10/32   # your office or VPN address`);
            }
        });
    }
    if (s.loadBalancerApi && !s.loadBalancer) {
        add("loadBalancerApi", "needs the load balancer: also set platform:loadBalancer true", FIXES.loadBalancer);
    }
    const { networkCidr, subnetCidr } = s;
    if (networkCidr !== undefined && !PRIVATE_RANGES.some((r) => cidrContains(r, networkCidr))) {
        add("networkCidr", `${networkCidr} is not a private range: Hetzner networks use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`,
            `pulumi config set ${PROJECT}:networkCidr ${DEFAULTS.networkCidr} && pulumi config set ${PROJECT}:subnetCidr ${DEFAULTS.subnetCidr}`);
    }
    if (networkCidr !== undefined && subnetCidr !== undefined) {
        if (!cidrContains(networkCidr, subnetCidr)) {
            add("subnetCidr", `${subnetCidr} is not inside networkCidr ${networkCidr}`);
        } else if ((parseIpv4Cidr(subnetCidr)?.prefix ?? 32) > 24) {
            add("subnetCidr", "must be a /24 or larger: node addresses are assigned from it");
        }
    }
    for (const reserved of [CLUSTER_CIDR, SERVICE_CIDR]) {
        if (networkCidr !== undefined && (cidrContains(reserved, networkCidr) || cidrContains(networkCidr, reserved))) {
            add("networkCidr", `${networkCidr} overlaps k3s's pod/service range ${reserved}`);
        }
    }
    const s3Keys = ["etcdS3Bucket", "etcdS3AccessKey", "etcdS3SecretKey"] as const;
    if (s3Keys.some((k) => s[k] !== undefined)) {
        for (const k of s3Keys) {
            if (s[k] === undefined) add(k, "is required for etcd snapshot upload to S3 (set all of etcdS3Bucket, etcdS3AccessKey, etcdS3SecretKey, or none)");
        }
    }
    if (s3Keys.every((k) => s[k] !== undefined) && s.k3sVersion !== undefined && !supportsEtcdS3Secret(s.k3sVersion)) {
        add("k3sVersion", `${s.k3sVersion} cannot read etcd S3 settings from a Secret (k3s v1.28.13, v1.29.8, v1.30.4 and later can); `
            + "the S3 key would have to be on every server's disk", FIXES.k3sVersion);
    }
    if (!raw.hcloudToken) {
        add("hcloud:token", "no Hetzner Cloud API token: set it as a secret, or export HCLOUD_TOKEN", FIXES["hcloud:token"]);
    }
    return problems;
}

/** k3s reads `--etcd-s3-config-secret` from these releases on (k3s v1.30.4+k3s1 release notes). */
function supportsEtcdS3Secret(version: string): boolean {
    const m = /^v1\.(\d+)\.(\d+)\+/.exec(version);
    if (!m) return false;
    const [minor, patch] = [Number(m[1]), Number(m[2])];
    const since: Record<number, number> = { 28: 13, 29: 8, 30: 4 };
    return minor > 30 || (minor in since && patch >= since[minor]);
}

function qualify(key: string): string {
    return key.includes(":") ? key : `${PROJECT}:${key}`;
}

/** "adminCidrs" + [0] -> "adminCidrs[0]", as `pulumi config set --path` spells it. */
function configPath(path: readonly PropertyKey[]): string {
    return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/** Namespaces the program or its providers read: `hcloud:token`, provider settings, Pulumi's own. */
const KNOWN_NAMESPACES = [PROJECT, "hcloud", "pulumi", "kubernetes", "command", "random", "tls", "docker-build"];

/**
 * Settings that only act in one mode, or with another setting's value: set
 * elsewhere they would be ignored without a word. A setting of the other
 * cluster mode is refused; one that waits for another setting's value (a
 * load balancer type while the load balancer is off, in-cluster database
 * settings with an external database) is a warning, as turning a feature off
 * for a while is normal.
 */
const APPLIES_ONLY: readonly { keys: readonly string[]; when: (s: Partial<RawSettings>) => boolean; where: string; refused: boolean }[] = [
    {
        keys: ["location", "controlPlaneCount", "controlPlaneServerType", "agentCount", "agentServerType", "serverImage", "k3sVersion", "adminCidrs",
            "loadBalancer", "loadBalancerType", "loadBalancerApi", "apiHostname", "protection", "networkCidr", "subnetCidr", "etcdSnapshotSchedule",
            "etcdSnapshotRetention", "etcdS3Bucket", "etcdS3Endpoint", "etcdS3Folder", "etcdS3Region", "etcdS3AccessKey", "etcdS3SecretKey", "clusterCredentialVersion"],
        when: (s) => s.mode === "hetzner",
        where: "in hetzner mode (this stack is mode existing)",
        refused: true,
    },
    { keys: ["kubeconfig", "kubeContext", "ingressClass", "ingressNamespace", "ingressPodSelector"], when: (s) => s.mode === "existing", where: "in existing mode", refused: true },
    { keys: ["loadBalancerType"], when: (s) => s.loadBalancer === true, where: "with loadBalancer true", refused: false },
    { keys: ["agentServerType"], when: (s) => (s.agentCount ?? 0) > 0, where: "with agents (agentCount above 0)", refused: false },
    { keys: ["acmeEmail"], when: (s) => s.tls !== "off", where: "with tls letsencrypt or letsencrypt-staging", refused: false },
    { keys: ["databaseUrl"], when: (s) => s.databaseMode === "external", where: "with databaseMode external", refused: true },
    {
        keys: ["postgresInstances", "postgresMajor", "cnpgOperator", "postgresStorageClass", "databaseImportUrl", "postgresStorage", "postgresCpu", "postgresMemory",
            "postgresMaxConnections", "pgbouncerPoolSize", "pgbouncerReservePool", "pgbouncerMaxClientConn", "pgbouncerReplicas", "backupSchedule", "backupRetentionDays",
            "backupStorage", "restoreDrillSchedule", "restoreDrillCheckQuery"],
        when: (s) => s.databaseMode !== "external",
        where: "with the in-cluster database (databaseMode cluster)",
        // A stack that moves to a managed database keeps them for the way back.
        refused: false,
    },
    {
        keys: ["backupS3Bucket", "backupS3Endpoint", "backupS3Region", "backupS3AccessKey", "backupS3SecretKey"],
        when: (s) => s.databaseMode !== "external" || Object.values(s.apps ?? {}).some((a) => a.volume !== undefined),
        where: "with the in-cluster database (databaseMode cluster) or an app volume",
        refused: false,
    },
];

/** Keys the stack sets that act only in another mode or with another setting's value: those refused, or those warned about. */
function ignoredSettings(values: Readonly<Record<string, unknown>>, s: Partial<RawSettings>, refused: boolean): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const rule of APPLIES_ONLY) {
        if (rule.refused !== refused || rule.when(s)) continue;
        for (const key of rule.keys.filter((k) => values[k] !== undefined && !problems.some((p) => p.key === qualify(k)))) {
            problems.push({ key: qualify(key), message: `only acts ${rule.where}: here it would be ignored`, fix: `pulumi config rm ${qualify(key)}` });
        }
    }
    return problems;
}

/** For a list setting: a fix of the bad item itself, or (when the value is no list) one that starts the list afresh. */
function listItemFix(key: string, issuePath: readonly PropertyKey[]): string | undefined {
    if (key !== "adminCidrs") return undefined;
    const example = "203.0.113.10/32   # your office or VPN address";
    return typeof issuePath[0] === "number"
        ? `pulumi config set --path '${PROJECT}:adminCidrs[${issuePath[0]}]' ${example}`
        : `pulumi config rm ${PROJECT}:adminCidrs && pulumi config set --path '${PROJECT}:adminCidrs[0]' ${example}`;
}

/** Validates raw stack config; throws ConfigError listing every problem at once. */
export function parseConfig(raw: RawConfig): PlatformConfig {
    const problems: ConfigProblem[] = [];
    const valid: Record<string, unknown> = {};
    const shape: Record<string, z.ZodType> = rawSchema.shape;
    for (const [key, schema] of Object.entries(shape)) {
        const result = schema.safeParse(raw.values[key]);
        if (result.success) {
            if (result.data !== undefined) valid[key] = result.data;
            continue;
        }
        for (const issue of result.error.issues) {
            const path = configPath([key, ...issue.path]);
            // A bad map key (an app name) carries its reason one level down.
            const message = issue.code === "invalid_key" ? issue.issues.map((i) => i.message).join("; ") : issue.message;
            if (key === "apps" && issue.code !== "invalid_key") problems.push(...appIssueProblems({ ...issue, message }, configPath));
            else problems.push({ key: qualify(path), message, fix: listItemFix(key, issue.path) ?? FIXES[key] });
        }
    }
    for (const key of Object.keys(raw.values)) {
        if (!(key in shape)) {
            const near = Object.keys(shape).find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
            problems.push({
                key: qualify(key),
                message: `unknown setting${near ? `; did you mean ${qualify(near)}?` : ""} (the README's configuration reference lists every setting)`,
                fix: `pulumi config rm ${qualify(key)}`,
            });
        }
    }
    for (const full of raw.otherKeys ?? []) {
        const namespace = full.slice(0, full.indexOf(":"));
        // Two edits for a long name, one for a short one ("aws" is not a misspelt "tls").
        const near = KNOWN_NAMESPACES.find((n) => n !== namespace && editDistance(namespace, n) <= (n.length > 4 ? 2 : 1));
        if (KNOWN_NAMESPACES.includes(namespace) || near === undefined) continue;
        problems.push({ key: full, message: `the namespace '${namespace}' is misspelt: nothing reads this key; did you mean ${near}:${full.slice(namespace.length + 1)}?`,
            fix: `pulumi config rm '${full}'` });
    }
    const ignored = ignoredSettings(raw.values, valid as Partial<RawSettings>, true);
    const hetznerOnly = ignored.filter((p) => p.message.includes("in hetzner mode"));
    if (hetznerOnly.length > 0) {
        // The other side of the conflict: a hetzner stack switched to existing mode.
        problems.push({ key: qualify("mode"), message: `is existing, but the stack sets ${hetznerOnly.length} hetzner-mode setting(s) (${hetznerOnly.map((p) => p.key.slice(PROJECT.length + 1)).join(", ")}): keep mode hetzner, or remove them`,
            fix: `pulumi config set ${PROJECT}:mode hetzner` });
    }
    problems.push(...ignored);
    for (const key of PLAIN_SECRET_SETTINGS) {
        if (raw.values[key] !== undefined && raw.isSecret !== undefined && !raw.isSecret(key)) {
            problems.push({ key: qualify(key), message: "is stored in plain text in the stack file; set it with --secret", fix: FIXES[key] });
        }
    }
    for (const leaf of raw.plainAppSecrets ?? []) {
        problems.push({ key: qualify(leaf), message: "is stored in plain text in the stack file (beside encrypted values, so Pulumi shows the whole apps value as secret); set it with --secret",
            fix: `pulumi config set --secret --path '${qualify(leaf)}' <value>` });
    }
    if (raw.hcloudTokenInPlainText) {
        problems.push({ key: "hcloud:token", message: "is stored in plain text in the stack file; set it with --secret", fix: FIXES["hcloud:token"] });
    }
    problems.push(...crossChecks(valid as Partial<RawSettings>, raw));
    problems.push(...appCrossChecks(valid, raw.isSecret?.("apps") ?? true, raw.projectDir));
    const apps = (valid as Partial<RawSettings>).apps ?? {};
    const bucketKeys = ["backupS3Bucket", "backupS3AccessKey", "backupS3SecretKey"] as const;
    const missingBucketKeys = bucketKeys.filter((k) => raw.values[k] === undefined);
    for (const [name, app] of Object.entries(apps)) {
        // Asked for backups explicitly: refused without a bucket (without `backup`, a warning at `pulumi up`).
        if (app.volume?.backup !== undefined && missingBucketKeys.length > 0) {
            problems.push({ key: qualify(`apps.${name}.volume.backup`), message: `needs the platform's backup bucket, where the snapshots go: set ${missingBucketKeys.join(", ")}`,
                fix: missingBucketKeys.map((k) => FIXES[k]).join(" && ") });
        }
    }
    problems.push(...databaseCrossChecks(valid, Object.entries(apps).map(([name, a]) => ({
        name,
        database: a.database,
        // Worst case: every replica (or the autoscaler's maximum) plus one surging during a rollout.
        maxPods: (a.autoscaling?.maxReplicas ?? replicasOf(a)) + (a.singleton || a.volume ? 0 : 1),
        env: a.env,
        secretNames: Object.keys(a.secrets),
    })), raw.isSecret?.("databaseUrl") ?? true, raw.isSecret?.("databaseImportUrl") ?? true));
    if (problems.length > 0) throw new ConfigError(problems);
    const s = rawSchema.parse(raw.values);

    const workload: WorkloadSettings = {
        stack: raw.stack,
        ingress: {
            tls: s.tls,
            acmeEmail: s.acmeEmail,
            ingressClass: s.ingressClass,
            controllerNamespace: s.ingressNamespace,
            controllerPodLabels: parseLabelSelector(s.ingressPodSelector),
            certManager: s.certManager,
        },
        apps: toAppSettings(s.apps, (secret) => secret),
        registry: s.registryServer && s.registryUsername && s.registryPassword
            ? { server: s.registryServer, username: s.registryUsername, password: s.registryPassword }
            : undefined,
        database: Object.values(s.apps).some((a) => a.database) ? toDatabaseSettings(s) : undefined,
        monthlyCostCap: s.monthlyCostCap,
        backupBucket: backupBucketOf(s),
    };

    const name = s.clusterName ?? dnsSafe(raw.stack);
    if (s.mode === "existing") {
        return { ...workload, mode: "existing", cluster: { name, kubeconfig: s.kubeconfig, context: s.kubeContext } };
    }
    return {
        ...workload,
        mode: "hetzner",
        cluster: {
            name,
            location: s.location,
            networkZone: LOCATION_ZONES[s.location],
            controlPlane: { count: s.controlPlaneCount, serverType: s.controlPlaneServerType },
            agents: { count: s.agentCount, serverType: s.agentServerType },
            serverImage: s.serverImage,
            k3sVersion: s.k3sVersion,
            adminCidrs: s.adminCidrs ?? [],
            loadBalancer: { enabled: s.loadBalancer, type: s.loadBalancerType, api: s.loadBalancerApi },
            apiHostname: s.apiHostname,
            protection: s.protection,
            networkCidr: s.networkCidr,
            subnetCidr: s.subnetCidr,
            etcdSnapshots: {
                schedule: s.etcdSnapshotSchedule,
                retention: s.etcdSnapshotRetention,
                s3: s.etcdS3Bucket !== undefined && s.etcdS3AccessKey !== undefined && s.etcdS3SecretKey !== undefined ? {
                    endpoint: s.etcdS3Endpoint,
                    bucket: s.etcdS3Bucket,
                    folder: s.etcdS3Folder,
                    region: s.etcdS3Region,
                    accessKey: s.etcdS3AccessKey,
                    secretKey: s.etcdS3SecretKey,
                } : undefined,
            },
            hcloudToken: raw.hcloudToken ?? "",
            credentialVersion: s.clusterCredentialVersion,
        },
    };
}


function readStackFile(stack: string): string[] {
    const file = path.join(process.cwd(), `Pulumi.${stack}.yaml`);
    return fs.existsSync(file) ? plainAppSecretsInStackFile(fs.readFileSync(file, "utf8")) : [];
}

function dnsSafe(stack: string): string {
    const cleaned = stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").slice(0, 30).replace(/-+$/, "");
    return cleaned || "platform";
}

/**
 * Reads the stack's config through the Pulumi runtime and validates it.
 * Secret settings come back as Pulumi secrets, never as plain strings.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): PlatformConfig {
    // Every key of our namespace, so a misspelt one is reported rather than ignored.
    const prefix = `${PROJECT}:`;
    const values = Object.fromEntries(Object.entries(pulumi.runtime.allConfig())
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, text]) => [key.slice(prefix.length), text]));
    const storedToken = new pulumi.Config("hcloud").get("token");
    const hcloudToken = storedToken ?? env.HCLOUD_TOKEN;
    const parsed = parseConfig({
        stack: pulumi.getStack(),
        values,
        otherKeys: Object.keys(pulumi.runtime.allConfig()).filter((key) => !key.startsWith(prefix)),
        projectDir: process.cwd(),
        hcloudToken,
        hcloudTokenInPlainText: storedToken !== undefined && isConfigSecret !== undefined && !isConfigSecret("hcloud:token"),
        // `pulumi up` runs in the project directory, where the stack file is (absent when config lives elsewhere, e.g. Pulumi ESC).
        plainAppSecrets: readStackFile(pulumi.getStack()),
        isSecret: isConfigSecret ? (key) => isConfigSecret(`${prefix}${key}`) : undefined,
    });
    for (const w of ignoredSettings(values, rawSchema.parse(values), false)) pulumi.log.warn(`${w.key}: ${w.message} (${w.fix})`);
    for (const app of parsed.apps.filter((a) => a.volume !== undefined && parsed.backupBucket === undefined)) {
        pulumi.log.warn(`${qualify(`apps.${app.name}.volume`)}: is not backed up: the stack has no backup bucket (set backupS3Bucket, backupS3AccessKey and backupS3SecretKey); its data is only as safe as the volume`);
    }
    const secret = (value: pulumi.Input<string>) => pulumi.secret(value);
    const apps = parsed.apps.map((app) => ({
        ...app,
        secrets: Object.fromEntries(Object.entries(app.secrets).map(([k, v]) => [k, secret(v)])),
    }));
    const registry = parsed.registry && { ...parsed.registry, password: secret(parsed.registry.password) };
    const backupBucket = parsed.backupBucket && { ...parsed.backupBucket, secretKey: secret(parsed.backupBucket.secretKey) };
    const db = parsed.database;
    const database = db === undefined ? undefined
        : db.mode === "external" ? { ...db, url: secret(db.url) }
            : {
                ...db,
                importFrom: db.importFrom === undefined ? undefined : secret(db.importFrom),
                backup: { ...db.backup, s3: db.backup.s3 && { ...db.backup.s3, secretKey: secret(db.backup.s3.secretKey) } },
            };
    if (parsed.mode === "existing") {
        const kubeconfig = parsed.cluster.kubeconfig === undefined ? undefined : secret(parsed.cluster.kubeconfig);
        return { ...parsed, apps, registry, database, backupBucket, cluster: { ...parsed.cluster, kubeconfig } };
    }
    const s3 = parsed.cluster.etcdSnapshots.s3;
    return {
        ...parsed,
        apps,
        registry,
        database,
        backupBucket,
        cluster: {
            ...parsed.cluster,
            hcloudToken: secret(parsed.cluster.hcloudToken),
            etcdSnapshots: {
                ...parsed.cluster.etcdSnapshots,
                s3: s3 === undefined ? undefined : { ...s3, secretKey: secret(s3.secretKey) },
            },
        },
    };
}
