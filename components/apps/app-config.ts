// Settings for ingress, TLS and the apps: the part of stack config that
// replaces a PaaS's `env` and `secret` commands. Parsed by components/config.ts
// together with the cluster settings, so every problem is reported at once.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CREDENTIAL_NAME } from "../../policies/rules/secrets";
import { isPinnedImage } from "../../policies/rules/workloads";
import { boolean, ConfigProblem, cpuQuantity, cron, dnsName, editDistance, fromJson, integer } from "../config-schema";

export const TLS_MODES = ["letsencrypt", "letsencrypt-staging", "off"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export interface IngressSettings {
    /** letsencrypt(-staging): cert-manager issues certificates over HTTP-01; off: a CDN terminates TLS. */
    readonly tls: TlsMode;
    readonly acmeEmail?: string;
    /** IngressClass of app Ingresses. */
    readonly ingressClass: string;
    /** Where the ingress controller's pods run, and their label: the only pods allowed to reach apps. */
    readonly controllerNamespace: string;
    readonly controllerPodLabels: Readonly<Record<string, string>>;
    /** install: cert-manager is installed here; existing: the cluster already runs it. */
    readonly certManager: "install" | "existing";
}

export interface RegistrySettings {
    readonly server: string;
    readonly username: string;
    readonly password: pulumi.Input<string>;
}

export interface AppVolume {
    /** Where the claim is mounted in the app's container (and its migration's). */
    readonly path: string;
    /** Requested size, in Gi. */
    readonly size: string;
    /** StorageClass of the claim; absent: the platform's retaining class (hetzner mode) or the cluster's default. */
    readonly storageClass?: string;
    /** Snapshots to the platform's backup bucket (backupS3*), when the stack has one. */
    readonly backup: { readonly schedule: string; readonly keepDays: number };
}

export interface AppSettings {
    readonly name: string;
    /** A pinned image reference, or a build that is pushed to the registry. */
    readonly image?: string;
    readonly build?: { readonly context: string; readonly dockerfile: string; readonly target?: string };
    readonly port: number;
    readonly replicas: number;
    readonly cpu: string;
    readonly memory: string;
    readonly env: Readonly<Record<string, string>>;
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
    /** Readiness: may check dependencies (the database); failing takes the pod out of the Service. */
    readonly healthPath: string;
    /** Startup and liveness: must not touch dependencies, or a database outage restarts every pod. */
    readonly livenessPath: string;
    readonly host?: string;
    readonly command?: readonly string[];
    readonly args?: readonly string[];
    readonly migrationCommand?: readonly string[];
    /** Seconds a migration statement may wait for a lock before it fails (and the next `pulumi up` retries). */
    readonly migrationLockTimeout: number;
    /** Seconds the app takes to drain on SIGTERM. */
    readonly shutdownTimeout: number;
    /** Seconds the app's own health check may take (its database ping). */
    readonly healthTimeout: number;
    /** Seconds a new pod may take to become healthy (first boot, cold caches). */
    readonly startupTimeout: number;
    /** A persistent volume (SQLite, uploaded files): one claim, one writer, so the app is a singleton. */
    readonly volume?: AppVolume;
    /** At most one pod at any time (a scheduler, or an app with a volume): replicas 1, Recreate, no PDB. */
    readonly singleton: boolean;
    /** No port: no Service, Ingress or HTTP probes. */
    readonly worker: boolean;
    readonly autoscaling?: { readonly minReplicas: number; readonly maxReplicas: number; readonly cpuUtilization: number };
    /** Gets a database `<name>` and role `app_<name>` (or the external database); DATABASE_URL is injected. */
    readonly database: boolean;
    /** Bump to rotate the app's database password. */
    readonly databasePasswordVersion: number;
}

export const APP_DEFAULTS = {
    port: 8080,
    replicas: 2,
    cpu: "500m",
    memory: "256Mi",
    healthPath: "/health",
    livenessPath: "/livez",
    migrationLockTimeout: 5,
    shutdownTimeout: 30,
    healthTimeout: 3,
    startupTimeout: 240,
} as const;


/** An app volume's snapshots: hourly, kept a week. */
export const VOLUME_BACKUP_DEFAULTS = { schedule: "0 * * * *", keepDays: 7 } as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function seconds(min: number, max: number) {
    return z.preprocess(
        (v) => (typeof v === "string" && /^\d+s?$/.test(v.trim()) ? Number(v.trim().replace(/s$/, "")) : v),
        z.number({ error: "must be a number of seconds" }).int("must be whole seconds").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
    );
}

const memoryQuantity = z.string().regex(/^\d+(Mi|Gi)$/, "must be a memory quantity such as 256Mi or 1Gi");

/**
 * A well-formed image reference (distribution/reference grammar): optional
 * registry host, lower-case path components, then an optional tag and digest.
 */
const IMAGE_REFERENCE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;


const stringList = z.array(z.string().min(1), { error: "must be a list of strings, such as [\"node\", \"dist/migrate.js\"]" }).min(1, "must not be empty");

/** Namespaces the platform itself uses; an app of that name would land in them. */
export const RESERVED_NAMESPACES = ["database", "default", "kube-system", "kube-public", "kube-node-lease", "cert-manager", "system-upgrade"];

const appName = z.string().regex(/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/,
    "app names must be 1-40 lower-case letters, digits or '-', starting with a letter (it names the namespace)")
    .refine((n) => !RESERVED_NAMESPACES.includes(n), `app names must not be a namespace the platform uses (${RESERVED_NAMESPACES.join(", ")})`);

const appSchema = z.object({
    image: z.string()
        .refine((ref) => IMAGE_REFERENCE.test(ref), "must be an image reference: registry/lower-case-path:tag or @sha256:digest, such as ghcr.io/acme/api:1.4.2")
        .refine(isPinnedImage, "must be pinned: a tag other than 'latest' (app:1.4.2) or a digest (app@sha256:...)").optional(),
    build: z.object({
        context: z.string().min(1),
        dockerfile: z.string().default("Dockerfile"),
        target: z.string().optional(),
    }).optional(),
    port: integer(1, 65535).default(APP_DEFAULTS.port),
    // No default here: a singleton (or an app with a volume) runs one pod, the rest APP_DEFAULTS.replicas (replicasOf).
    replicas: integer(1, 50).optional(),
    volume: z.object({
        path: z.string().regex(/^\/[^\s]*[^/\s]$/, "must be an absolute directory such as /data")
            .refine((p) => p !== "/tmp" && !p.startsWith("/tmp/"), "must not be under /tmp, the pod's scratch space"),
        size: z.string().regex(/^[1-9]\d*Gi$/, "must be a whole number of Gi, such as 10Gi"),
        storageClass: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a StorageClass name").optional(),
        // The schedule is the recovery point: at most one interval (plus a run) of writes is lost.
        backup: z.object({
            schedule: cron.default(VOLUME_BACKUP_DEFAULTS.schedule),
            keepDays: integer(1, 3650).default(VOLUME_BACKUP_DEFAULTS.keepDays),
        }, { error: "must be { schedule, keepDays } such as { schedule: '0 * * * *', keepDays: 7 }" }).strict().optional(),
    }, { error: "must be { path, size } such as { path: /data, size: 10Gi }" }).strict().optional(),
    cpu: cpuQuantity.default(APP_DEFAULTS.cpu),
    memory: memoryQuantity.default(APP_DEFAULTS.memory),
    env: z.record(z.string().regex(ENV_NAME, "env names must be letters, digits and _"), z.union([z.string(), z.number(), z.boolean()]))
        .default({})
        .transform((env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))),
    secrets: z.record(z.string().regex(ENV_NAME, "secret names must be letters, digits and _"), z.string()).default({}),
    healthPath: z.string().regex(/^\/\S*$/, "must be a path such as /health").default(APP_DEFAULTS.healthPath),
    livenessPath: z.string().regex(/^\/\S*$/, "must be a path such as /livez").default(APP_DEFAULTS.livenessPath),
    host: dnsName.optional(),
    command: stringList.optional(),
    args: stringList.optional(),
    migrationCommand: stringList.optional(),
    migrationLockTimeout: seconds(1, 300).default(APP_DEFAULTS.migrationLockTimeout),
    shutdownTimeout: seconds(1, 3600).default(APP_DEFAULTS.shutdownTimeout),
    healthTimeout: seconds(1, 60).default(APP_DEFAULTS.healthTimeout),
    startupTimeout: seconds(10, 3600).default(APP_DEFAULTS.startupTimeout),
    singleton: boolean.default(false),
    worker: boolean.default(false),
    database: boolean.default(false),
    databasePasswordVersion: integer(1, 1_000_000).default(1),
    autoscaling: z.object({
        minReplicas: z.number().int().min(1),
        maxReplicas: z.number().int().min(1).max(100),
        cpuUtilization: z.number().int().min(10).max(100).default(70),
    }).optional(),
}).strict();

export type RawApp = z.infer<typeof appSchema>;

/** The pods an app runs without an autoscaler: its replicas, else one for a singleton or an app with a volume, else the default. */
export function replicasOf(a: Pick<RawApp, "replicas" | "singleton" | "volume">): number {
    return a.replicas ?? (a.singleton || a.volume ? 1 : APP_DEFAULTS.replicas);
}

/** An example value per app setting: what a fix command sets. */
const APP_FIELD_EXAMPLES: Readonly<Record<string, string>> = {
    image: "ghcr.io/acme/<app>:1.0.0", "build.context": "examples/api", "build.dockerfile": "Dockerfile", port: String(APP_DEFAULTS.port),
    replicas: String(APP_DEFAULTS.replicas), cpu: APP_DEFAULTS.cpu, memory: APP_DEFAULTS.memory, healthPath: APP_DEFAULTS.healthPath,
    livenessPath: APP_DEFAULTS.livenessPath, host: "<app>.example.com", migrationLockTimeout: String(APP_DEFAULTS.migrationLockTimeout),
    shutdownTimeout: String(APP_DEFAULTS.shutdownTimeout), healthTimeout: String(APP_DEFAULTS.healthTimeout), startupTimeout: String(APP_DEFAULTS.startupTimeout),
    singleton: "false", worker: "false", database: "true", databasePasswordVersion: "1",
    "autoscaling.minReplicas": "2", "autoscaling.maxReplicas": "5", "autoscaling.cpuUtilization": "70",
    "volume.path": "/data", "volume.size": "10Gi", "volume.storageClass": "hcloud-volumes-retain",
    "volume.backup.schedule": `'${VOLUME_BACKUP_DEFAULTS.schedule}'`, "volume.backup.keepDays": String(VOLUME_BACKUP_DEFAULTS.keepDays),
};

/**
 * The problems of one schema issue inside `apps`, each naming its exact key
 * and a fix for that key: an unknown setting is removed (and a near one
 * named), a bad value is set to an example of its kind.
 */
export function appIssueProblems(issue: { code: string; path: readonly PropertyKey[]; message: string; keys?: readonly string[] }, configPath: (path: readonly PropertyKey[]) => string): ConfigProblem[] {
    const key = (p: readonly PropertyKey[]) => `platform:${configPath(["apps", ...p])}`;
    const [app, ...rest] = issue.path.map(String);
    if (app === undefined) {
        return [{ key: "platform:apps", message: issue.message, fix: `pulumi config rm platform:apps && ${APP_FIXES.apps}` }];
    }
    if (issue.code === "unrecognized_keys") {
        const known = Object.keys(appSchema.shape);
        return (issue.keys ?? []).map((unknown) => {
            const near = known.find((k) => k.toLowerCase() === unknown.toLowerCase() || editDistance(k, unknown) <= 2);
            return {
                key: key([...issue.path, unknown]),
                message: `unknown app setting${near ? `; did you mean ${near}?` : ""} (the README's Apps section lists them)`,
                fix: `pulumi config rm --path '${key([...issue.path, unknown])}'`,
            };
        });
    }
    const field = rest.filter((r) => !/^\d+$/.test(r)).join(".");
    const example = APP_FIELD_EXAMPLES[field];
    const fix = example === undefined
        ? `pulumi config rm --path '${key(issue.path)}'`
        : `pulumi config set --path '${key(issue.path)}' ${example.replace("<app>", app)}`;
    return [{ key: key(issue.path), message: issue.message, fix }];
}



export const appsSchema = fromJson(z.record(appName, appSchema, {
    // Only for a value that is not a map; a bad key or setting keeps its own message.
    error: (issue) => (issue.code === "invalid_type" ? "must be a map of app name to app settings" : undefined),
}));

export const ingressSchemaShape = {
    tls: z.enum(TLS_MODES, { error: `must be one of ${TLS_MODES.join(", ")}` }).default("letsencrypt"),
    acmeEmail: z.email("must be an email address (Let's Encrypt sends expiry notices there)").optional(),
    ingressClass: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be an IngressClass name").default("traefik"),
    ingressNamespace: z.string().min(1).default("kube-system"),
    ingressPodSelector: z.string().regex(/^[\w./-]+=[\w.-]+(,[\w./-]+=[\w.-]+)*$/, "must be label=value[,label=value]").default("app.kubernetes.io/name=traefik"),
    certManager: z.enum(["install", "existing"], { error: "must be 'install' or 'existing'" }).default("install"),
    registryServer: z.string().regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._/-]+)?$/, "must be a registry host (and optional path), such as ghcr.io/acme").optional(),
    registryUsername: z.string().min(1).optional(),
    registryPassword: z.string().min(1).optional(),
    apps: appsSchema.default({}),
};

export const APP_FIXES: Record<string, string> = {
    tls: "pulumi config set platform:tls letsencrypt   # or letsencrypt-staging, off",
    acmeEmail: "pulumi config set platform:acmeEmail ops@example.com",
    ingressClass: "pulumi config set platform:ingressClass traefik",
    ingressNamespace: "pulumi config set platform:ingressNamespace kube-system",
    ingressPodSelector: "pulumi config set platform:ingressPodSelector app.kubernetes.io/name=traefik",
    certManager: "pulumi config set platform:certManager install   # or existing",
    registryServer: "pulumi config set platform:registryServer ghcr.io/acme",
    registryUsername: "pulumi config set platform:registryUsername <user>",
    registryPassword: "pulumi config set --secret platform:registryPassword <token>",
    apps: "pulumi config set --path 'platform:apps.api.image' ghcr.io/acme/api:1.0.0",
};

type IngressValues = { [K in keyof typeof ingressSchemaShape]?: z.infer<(typeof ingressSchemaShape)[K]> };

/** Checks across keys of the app and ingress settings; `v` holds only keys valid on their own. */
export function appCrossChecks(v: IngressValues, appsAreSecret: boolean, projectDir?: string): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const add = (key: string, message: string, fix: string) => problems.push({ key: `platform:${key}`, message, fix });
    const apps = v.apps ?? {};
    const hosts = new Map<string, string>();
    for (const [name, app] of Object.entries(apps)) {
        const at = (field: string) => `apps.${name}.${field}`;
        if (app.image !== undefined && app.build !== undefined) {
            add(`apps.${name}`, "has both image and build: keep one (build pushes its own image)", `pulumi config rm --path 'platform:apps.${name}.image'`);
        } else if (app.image === undefined && app.build === undefined) {
            add(`apps.${name}`, "needs image (a pinned reference) or build (a Docker context)", `pulumi config set --path 'platform:apps.${name}.image' ghcr.io/acme/${name}:1.0.0`);
        }
        if (app.build && !(v.registryServer && v.registryUsername && v.registryPassword)) {
            const missing = (["registryServer", "registryUsername", "registryPassword"] as const).filter((k) => !v[k]);
            add(missing[0], `apps.${name} is built from source: the image is pushed to a registry, which needs ${missing.join(", ")}`, missing.map((k) => APP_FIXES[k]).join(" && "));
        }
        if (app.build && projectDir !== undefined && !fs.existsSync(path.join(projectDir, app.build.context))) {
            add(at("build.context"), `${app.build.context} does not exist (a directory relative to the project)`, `pulumi config set --path 'platform:apps.${name}.build.context' <directory with the Dockerfile>`);
        } else if (app.build && projectDir !== undefined && !fs.existsSync(path.join(projectDir, app.build.context, app.build.dockerfile))) {
            add(at("build.dockerfile"), `${app.build.dockerfile} is not in ${app.build.context}`, `pulumi config set --path 'platform:apps.${name}.build.dockerfile' Dockerfile`);
        }
        // The readiness probe waits healthTimeout + 2 s (at least 5 s); a startup budget shorter than one probe never lets the app start.
        if (app.healthTimeout + 2 >= app.startupTimeout) {
            add(at("healthTimeout"), `${app.healthTimeout} s leaves no room in startupTimeout ${app.startupTimeout} s: one health check alone takes ${Math.max(5, app.healthTimeout + 2)} s`,
                `pulumi config set --path 'platform:apps.${name}.startupTimeout' ${Math.max(APP_DEFAULTS.startupTimeout, (app.healthTimeout + 2) * 4)}`);
        }
        if (app.healthPath === app.livenessPath) {
            add(at("livenessPath"), `is the health path (${app.healthPath}), which checks dependencies: a database outage would restart every pod`,
                `pulumi config set --path 'platform:apps.${name}.livenessPath' ${app.healthPath === APP_DEFAULTS.livenessPath ? "/alive" : APP_DEFAULTS.livenessPath}`);
        }
        for (const key of Object.keys(app.env)) {
            if (CREDENTIAL_NAME.test(key)) {
                add(at(`env.${key}`), `looks like a credential; env values land in a ConfigMap in plain text. Move it to apps.${name}.secrets`,
                    `pulumi config rm --path 'platform:apps.${name}.env.${key}' && pulumi config set --secret --path 'platform:apps.${name}.secrets.${key}' <value>`);
            }
            if (key in app.secrets) {
                add(at(`env.${key}`), `is also in apps.${name}.secrets; set it in one place`, `pulumi config rm --path 'platform:apps.${name}.env.${key}'`);
            }
        }
        if (Object.keys(app.secrets).length > 0 && !appsAreSecret) {
            add(at("secrets"), "is stored in plain text in the stack file; secrets must be set with --secret",
                `pulumi config set --secret --path 'platform:apps.${name}.secrets.${Object.keys(app.secrets)[0]}' <value>`);
        }
        if (app.worker && app.host) {
            add(at("host"), "a worker has no port, so it cannot have a host; drop host or worker", `pulumi config rm --path 'platform:apps.${name}.host'`);
        }
        // One writer: a volume attaches to one node, and two pods writing one SQLite file corrupt it.
        const single = app.volume ? "an app with a volume runs exactly one pod (its claim attaches to one node, and two writers would corrupt its data)"
            : app.singleton ? "a singleton runs exactly one pod" : undefined;
        if (single && app.autoscaling) {
            add(at("autoscaling"), `${single} and cannot autoscale`, `pulumi config rm --path 'platform:apps.${name}.autoscaling'`);
        } else if (single && app.replicas !== undefined && app.replicas > 1) {
            add(at("replicas"), single, `pulumi config set --path 'platform:apps.${name}.replicas' 1`);
        }
        if (app.autoscaling && app.autoscaling.minReplicas > app.autoscaling.maxReplicas) {
            add(at("autoscaling.minReplicas"), `${app.autoscaling.minReplicas} is above maxReplicas ${app.autoscaling.maxReplicas}`, `pulumi config set --path 'platform:apps.${name}.autoscaling.minReplicas' 2`);
        }
        // An app with a volume and no database migrates its volume's data in its pod; the others need a direct URL.
        if (app.migrationCommand && !app.database && !app.volume && !("DATABASE_DIRECT_URL" in app.secrets)) {
            add(at("secrets.DATABASE_DIRECT_URL"),
                "is required by migrationCommand (or set database: true): migrations take an advisory lock, which does not work through PgBouncer's transaction pooling, so they need a direct database URL",
                `pulumi config set --secret --path 'platform:apps.${name}.secrets.DATABASE_DIRECT_URL' 'postgresql://...'`);
        }
        if (app.host) {
            const other = hosts.get(app.host);
            if (other) add(at("host"), `${app.host} is already the host of apps.${other}`, `pulumi config set --path 'platform:apps.${name}.host' ${name}.example.com`);
            hosts.set(app.host, name);
        }
    }
    if (v.tls !== "off" && v.tls !== undefined && !v.acmeEmail && [...hosts.keys()].length > 0) {
        add("acmeEmail", `is required with tls=${v.tls}: Let's Encrypt registers the account with it`, APP_FIXES.acmeEmail);
    }
    return problems;
}

/** Builds the typed app and ingress settings; secret values become Pulumi secrets when `secret` is given. */
export function toAppSettings(v: Required<Pick<IngressValues, "apps">>["apps"], secret: (s: string) => pulumi.Input<string>): AppSettings[] {
    return Object.entries(v).map(([name, a]): AppSettings => ({
        name,
        image: a.image,
        build: a.build,
        port: a.port,
        replicas: replicasOf(a),
        cpu: a.cpu,
        memory: a.memory,
        env: a.env,
        secrets: Object.fromEntries(Object.entries(a.secrets).map(([k, s]) => [k, secret(s)])),
        healthPath: a.healthPath,
        livenessPath: a.livenessPath,
        host: a.host,
        command: a.command,
        args: a.args,
        migrationCommand: a.migrationCommand,
        migrationLockTimeout: a.migrationLockTimeout,
        shutdownTimeout: a.shutdownTimeout,
        healthTimeout: a.healthTimeout,
        startupTimeout: a.startupTimeout,
        singleton: a.singleton || a.volume !== undefined,
        volume: a.volume && { ...a.volume, backup: a.volume.backup ?? VOLUME_BACKUP_DEFAULTS },
        worker: a.worker,
        autoscaling: a.autoscaling,
        database: a.database,
        databasePasswordVersion: a.databasePasswordVersion,
    }));
}

export function parseLabelSelector(selector: string): Record<string, string> {
    return Object.fromEntries(selector.split(",").map((pair) => pair.split("=") as [string, string]));
}
