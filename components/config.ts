// Stack configuration: the only interface for settings and secrets.
//
// `parseConfig` is pure: it takes the raw values Pulumi holds for a stack and
// either returns a fully typed, defaulted config or throws a ConfigError that
// lists every problem at once (key, what is wrong, and the command that fixes
// it). `loadConfig` feeds it from `pulumi.Config` and turns secret settings into
// Pulumi secrets. Nothing here registers a resource, so bad config fails before
// any resource exists.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
// Not in the SDK's typings, but the only way to know whether a key is stored encrypted.
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { boolean, ConfigProblem, cron, dnsName, fromJson, integer, s3Endpoint } from "./config-schema";
import { APP_FIXES, AppSettings, appCrossChecks, IngressSettings, ingressSchemaShape, parseLabelSelector, RegistrySettings, toAppSettings } from "./app-config";
import { DATABASE_FIXES, databaseCrossChecks, databaseSchemaShape, DatabaseSettings, S3Settings, toDatabaseSettings } from "./database-config";
import { CLUSTER_CIDR, SERVICE_CIDR } from "./k3s-render";

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

function isIpv6Cidr(cidr: string): boolean {
    const m = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(cidr);
    return m !== null && m[1].includes(":") && Number(m[2]) <= 128;
}

const ipv4Cidr = z.string().refine((s) => parseIpv4Cidr(s) !== undefined,
    "must be an IPv4 network in CIDR form with no host bits set, such as 10.0.0.0/16");

const adminCidr = z.string().refine((s) => parseIpv4Cidr(s) !== undefined || isIpv6Cidr(s),
    "must be an IPv4 or IPv6 network in CIDR form, such as 203.0.113.10/32");

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
            add(key, `'${type}' is not sold in ${s.location}; it is available in ${where.join(", ")} (or choose a cpx/ccx type)`);
        }
    }
    if (raw.values.adminCidrs === undefined) {
        add("adminCidrs", "is required in hetzner mode: SSH (22) and the Kubernetes API (6443) are open only to these networks");
    } else if (s.adminCidrs?.length === 0) {
        add("adminCidrs", "is empty: SSH (22) and the Kubernetes API (6443) would be reachable from nowhere");
    } else if (s.adminCidrs?.some((c) => c === "0.0.0.0/0" || c === "::/0")) {
        add("adminCidrs", "must not contain 0.0.0.0/0 or ::/0: that opens SSH and the Kubernetes API to the whole internet");
    }
    if (s.loadBalancerApi && !s.loadBalancer) {
        add("loadBalancerApi", "needs the load balancer: also set platform:loadBalancer true", FIXES.loadBalancer);
    }
    const { networkCidr, subnetCidr } = s;
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
            problems.push({ key: qualify(path), message, fix: FIXES[key] });
        }
    }
    for (const key of Object.keys(raw.values)) {
        if (!(key in shape)) {
            const near = Object.keys(shape).find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
            problems.push({
                key: qualify(key),
                message: `unknown setting${near ? `; did you mean ${qualify(near)}?` : ""} (Pulumi.yaml lists every setting)`,
                fix: `pulumi config rm ${qualify(key)}`,
            });
        }
    }
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
    problems.push(...appCrossChecks(valid, raw.isSecret?.("apps") ?? true));
    const apps = (valid as Partial<RawSettings>).apps ?? {};
    problems.push(...databaseCrossChecks(valid, Object.entries(apps).map(([name, a]) => ({
        name,
        database: a.database,
        // Worst case: every replica (or the autoscaler's maximum) plus one surging during a rollout.
        maxPods: (a.autoscaling?.maxReplicas ?? a.replicas) + (a.singleton ? 0 : 1),
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

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let diagonal = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const above = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
            diagonal = above;
        }
    }
    return row[b.length];
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
        hcloudToken,
        hcloudTokenInPlainText: storedToken !== undefined && isConfigSecret !== undefined && !isConfigSecret("hcloud:token"),
        // `pulumi up` runs in the project directory, where the stack file is (absent when config lives elsewhere, e.g. Pulumi ESC).
        plainAppSecrets: readStackFile(pulumi.getStack()),
        isSecret: isConfigSecret ? (key) => isConfigSecret(`${prefix}${key}`) : undefined,
    });
    const secret = (value: pulumi.Input<string>) => pulumi.secret(value);
    const apps = parsed.apps.map((app) => ({
        ...app,
        secrets: Object.fromEntries(Object.entries(app.secrets).map(([k, v]) => [k, secret(v)])),
    }));
    const registry = parsed.registry && { ...parsed.registry, password: secret(parsed.registry.password) };
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
        return { ...parsed, apps, registry, database, cluster: { ...parsed.cluster, kubeconfig } };
    }
    const s3 = parsed.cluster.etcdSnapshots.s3;
    return {
        ...parsed,
        apps,
        registry,
        database,
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
