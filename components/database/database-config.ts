// Database settings: the in-cluster tier on CloudNativePG (instances, sizes,
// pooler, backups, restore drill, password versions) or an external database URL.
// Parsed with the rest of stack config by components/config.ts.
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ConfigProblem, cpuQuantity, cron, integer, s3Endpoint } from "../config-schema";
import { connectionBudget, RESERVED_CONNECTIONS } from "../../policies/rules/connection-budget";
import { LOGIN_SLOTS, memoryMiB } from "./database-render";
import { POSTGRES_IMAGES, PostgresMajor } from "../versions";

export const DATABASE_DEFAULTS = {
    databaseMode: "cluster",
    postgresInstances: 3,
    postgresMajor: 17,
    cnpgOperator: "install",
    postgresStorage: "20Gi",
    postgresCpu: "1",
    postgresMemory: "2Gi",
    postgresMaxConnections: 200,
    pgbouncerPoolSize: 20,
    pgbouncerReservePool: 5,
    pgbouncerMaxClientConn: 100,
    pgbouncerReplicas: 2,
    backupSchedule: "0 3 * * *",
    backupRetentionDays: 7,
    backupStorage: "20Gi",
    restoreDrillSchedule: "0 5 * * 0",
} as const;

/** Connections PostgreSQL keeps beyond the pools: superusers, backups, the drill, migrations, the operator. */
/** What an app opens per pod when it does not set DB_MAX_CONNECTIONS (the sample API's default). */
export const DEFAULT_DB_MAX_CONNECTIONS = 10;

export interface S3Settings {
    readonly endpoint: string;
    readonly bucket: string;
    readonly region: string;
    readonly accessKey: string;
    readonly secretKey: pulumi.Input<string>;
}

export interface ClusterDatabaseSettings {
    readonly mode: "cluster";
    /** PostgreSQL instances of the CloudNativePG Cluster: a primary and streaming replicas. */
    readonly instances: number;
    readonly major: PostgresMajor;
    /** install: this program installs the CloudNativePG operator; existing: the cluster runs one. */
    readonly operator: "install" | "existing";
    /** Existing mode: the StorageClass for the data (absent: the cluster's default). */
    readonly storageClass?: string;
    /** A database URL (secret) the new Cluster starts as a copy of; only read when the Cluster is created. */
    readonly importFrom?: pulumi.Input<string>;
    readonly storage: string;
    readonly cpu: string;
    readonly memory: string;
    readonly maxConnections: number;
    readonly pgbouncer: { readonly poolSize: number; readonly reservePool: number; readonly maxClientConn: number; readonly replicas: number };
    readonly backup: {
        readonly schedule: string;
        readonly retentionDays: number;
        readonly storage: string;
        readonly s3?: S3Settings;
    };
    readonly restoreDrill: { readonly schedule: string; readonly checkQuery?: string };
}

export interface ExternalDatabaseSettings {
    readonly mode: "external";
    /** The managed database's URL (secret), injected as DATABASE_URL and DATABASE_DIRECT_URL. */
    readonly url: pulumi.Input<string>;
}

export type DatabaseSettings = ClusterDatabaseSettings | ExternalDatabaseSettings;

const SIZE = /^\d+(Mi|Gi)$/;
// zod runs every check of a schema: the minimum is only measured on a well-formed size (else "2GB" would throw).
const gibAtLeast = (min: number) => z.string().regex(SIZE, "must be a size in Mi or Gi, such as 20Gi (not GB)")
    .refine((q) => !SIZE.test(q) || memoryMiB(q) >= min * 1024, `must be at least ${min}Gi`);

/** sslmode values that refuse a plain-text connection. */
const SECURE_SSLMODES = ["require", "verify-ca", "verify-full"];

export function hasSecureSslmode(url: string): boolean {
    try {
        const mode = new URL(url).searchParams.get("sslmode");
        return mode !== null && SECURE_SSLMODES.includes(mode);
    } catch {
        return false;
    }
}

export const databaseSchemaShape = {
    databaseMode: z.enum(["cluster", "external"], { error: "must be 'cluster' or 'external'" }).default(DATABASE_DEFAULTS.databaseMode),
    databaseUrl: z.string().refine((u) => /^postgres(ql)?:\/\//.test(u), "must be a postgresql:// URL").optional(),
    postgresInstances: integer(1, 9).default(DATABASE_DEFAULTS.postgresInstances),
    postgresMajor: z.preprocess((v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v),
        z.union(Object.keys(POSTGRES_IMAGES).map((m) => z.literal(Number(m))) as [z.ZodLiteral<number>, z.ZodLiteral<number>, ...z.ZodLiteral<number>[]],
            { error: `must be a PostgreSQL major: ${Object.keys(POSTGRES_IMAGES).join(", ")}` }))
        .default(DATABASE_DEFAULTS.postgresMajor),
    cnpgOperator: z.enum(["install", "existing"], { error: "must be 'install' or 'existing'" }).default(DATABASE_DEFAULTS.cnpgOperator),
    postgresStorageClass: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a StorageClass name").optional(),
    databaseImportUrl: z.string().refine((u) => /^postgres(ql)?:\/\/[^/]+\/[^/?]+/.test(u), "must be a postgresql:// URL that names a database").optional(),
    postgresStorage: gibAtLeast(10).default(DATABASE_DEFAULTS.postgresStorage),
    postgresCpu: cpuQuantity.default(DATABASE_DEFAULTS.postgresCpu),
    postgresMemory: gibAtLeast(0.5).default(DATABASE_DEFAULTS.postgresMemory),
    postgresMaxConnections: integer(20, 5000).default(DATABASE_DEFAULTS.postgresMaxConnections),
    pgbouncerPoolSize: integer(1, 1000).default(DATABASE_DEFAULTS.pgbouncerPoolSize),
    pgbouncerReservePool: integer(0, 100).default(DATABASE_DEFAULTS.pgbouncerReservePool),
    pgbouncerMaxClientConn: integer(10, 100_000).default(DATABASE_DEFAULTS.pgbouncerMaxClientConn),
    // At least two: a PgBouncer restart or node loss must not cut every app off.
    pgbouncerReplicas: integer(2, 10).default(DATABASE_DEFAULTS.pgbouncerReplicas),
    backupSchedule: cron.default(DATABASE_DEFAULTS.backupSchedule),
    backupRetentionDays: integer(1, 3650).default(DATABASE_DEFAULTS.backupRetentionDays),
    backupStorage: gibAtLeast(1).default(DATABASE_DEFAULTS.backupStorage),
    backupS3Bucket: z.string().min(1).optional(),
    backupS3Endpoint: s3Endpoint,
    backupS3Region: z.string().default("fsn1"),
    backupS3AccessKey: z.string().min(1).optional(),
    backupS3SecretKey: z.string().min(1).optional(),
    restoreDrillSchedule: cron.default(DATABASE_DEFAULTS.restoreDrillSchedule),
    restoreDrillCheckQuery: z.string().min(1).optional(),
};

export const DATABASE_FIXES: Record<string, string> = {
    databaseMode: "pulumi config set platform:databaseMode cluster   # or external",
    databaseUrl: "pulumi config set --secret platform:databaseUrl 'postgresql://user:pw@host/db?sslmode=require'",
    postgresInstances: "pulumi config set platform:postgresInstances 3",
    postgresMajor: "pulumi config set platform:postgresMajor 17",
    cnpgOperator: "pulumi config set platform:cnpgOperator install   # or existing",
    postgresStorageClass: "pulumi config set platform:postgresStorageClass <a StorageClass with reclaimPolicy Retain>",
    databaseImportUrl: "pulumi config set --secret platform:databaseImportUrl 'postgresql://user:pw@host/db?sslmode=require'",
    postgresStorage: "pulumi config set platform:postgresStorage 20Gi",
    postgresCpu: "pulumi config set platform:postgresCpu 1",
    postgresMemory: "pulumi config set platform:postgresMemory 2Gi",
    postgresMaxConnections: "pulumi config set platform:postgresMaxConnections 200",
    pgbouncerPoolSize: "pulumi config set platform:pgbouncerPoolSize 20",
    pgbouncerReservePool: "pulumi config set platform:pgbouncerReservePool 5",
    pgbouncerMaxClientConn: "pulumi config set platform:pgbouncerMaxClientConn 200",
    pgbouncerReplicas: "pulumi config set platform:pgbouncerReplicas 2",
    backupSchedule: "pulumi config set platform:backupSchedule '0 3 * * *'",
    backupRetentionDays: "pulumi config set platform:backupRetentionDays 7",
    backupStorage: "pulumi config set platform:backupStorage 20Gi",
    backupS3Bucket: "pulumi config set platform:backupS3Bucket my-backups",
    backupS3Endpoint: "pulumi config set platform:backupS3Endpoint fsn1.your-objectstorage.com",
    backupS3Region: "pulumi config set platform:backupS3Region fsn1",
    backupS3AccessKey: "pulumi config set platform:backupS3AccessKey <access key>",
    backupS3SecretKey: "pulumi config set --secret platform:backupS3SecretKey <secret key>",
    restoreDrillSchedule: "pulumi config set platform:restoreDrillSchedule '0 5 * * 0'",
    restoreDrillCheckQuery: "pulumi config set platform:restoreDrillCheckQuery 'SELECT count(*) > 0 FROM items'",
};

type DatabaseValues = { [K in keyof typeof databaseSchemaShape]?: z.infer<(typeof databaseSchemaShape)[K]> };

export interface DatabaseApp {
    readonly name: string;
    readonly database: boolean;
    readonly maxPods: number;
    readonly env: Readonly<Record<string, string>>;
    readonly secretNames: readonly string[];
}

export function databaseCrossChecks(v: DatabaseValues, apps: readonly DatabaseApp[], databaseUrlIsSecret: boolean, importUrlIsSecret = true): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const add = (key: string, message: string, fix = DATABASE_FIXES[key]) => problems.push({ key: `platform:${key}`, message, fix });
    const users = apps.filter((a) => a.database);
    for (const app of users) {
        const perPod = app.env.DB_MAX_CONNECTIONS;
        if (perPod !== undefined && !/^[1-9]\d*$/.test(perPod)) {
            add(`apps.${app.name}.env.DB_MAX_CONNECTIONS`, `must be a whole number of connections per pod, at least 1 (got '${perPod}'): the connection budget is computed from it`,
                `pulumi config set --path 'platform:apps.${app.name}.env.DB_MAX_CONNECTIONS' ${DEFAULT_DB_MAX_CONNECTIONS}`);
        }
        for (const name of ["DATABASE_URL", "DATABASE_DIRECT_URL"]) {
            if (app.secretNames.includes(name)) {
                add(`apps.${app.name}.secrets.${name}`, `is set by the platform for an app with database: true; remove it`, `pulumi config rm --path 'platform:apps.${app.name}.secrets.${name}'`);
            }
        }
    }
    // The bucket is the database's and the app volumes' (databaseMode external keeps it for the volumes).
    const s3 = ["backupS3Bucket", "backupS3AccessKey", "backupS3SecretKey"] as const;
    if (s3.some((k) => v[k] !== undefined)) {
        for (const k of s3) if (v[k] === undefined) add(k, "is required for backup upload to S3 (set backupS3Bucket, backupS3AccessKey and backupS3SecretKey, or none)");
    }
    if (v.databaseMode === "external") {
        if (users.length > 0 && v.databaseUrl === undefined) {
            add("databaseUrl", "is required with databaseMode external (the managed database's URL)");
        }
        if (v.databaseUrl !== undefined && !hasSecureSslmode(v.databaseUrl)) {
            add("databaseUrl", "must require TLS: add ?sslmode=require (or verify-ca, verify-full); an external database is reached over the internet");
        }
        if (v.databaseUrl !== undefined && !databaseUrlIsSecret) {
            add("databaseUrl", "is stored in plain text in the stack file; set it with --secret");
        }
        return problems;
    }
    if (v.databaseImportUrl !== undefined) {
        if (!hasSecureSslmode(v.databaseImportUrl)) {
            add("databaseImportUrl", "must require TLS: add ?sslmode=require (or verify-ca, verify-full); the source is read over the network");
        }
        if (!importUrlIsSecret) add("databaseImportUrl", "is stored in plain text in the stack file; set it with --secret");
        if (users.length !== 1) {
            add("databaseImportUrl", `imports one database into the one app with database: true; ${users.length} apps have one`,
                "pulumi config rm platform:databaseImportUrl");
        }
    }
    const budgeted = users.filter((a) => a.env.DB_MAX_CONNECTIONS === undefined || /^[1-9]\d*$/.test(a.env.DB_MAX_CONNECTIONS));
    if (budgeted.length > 0 && v.pgbouncerMaxClientConn !== undefined && v.pgbouncerPoolSize !== undefined && v.pgbouncerReservePool !== undefined
        && v.pgbouncerReplicas !== undefined && v.postgresMaxConnections !== undefined) {
        const budget = connectionBudget(budgeted.map((a) => ({
            name: a.name,
            maxPods: a.maxPods,
            perPod: Number(a.env.DB_MAX_CONNECTIONS ?? DEFAULT_DB_MAX_CONNECTIONS),
        })), {
            maxClientConn: v.pgbouncerMaxClientConn,
            poolSize: v.pgbouncerPoolSize,
            reservePoolSize: v.pgbouncerReservePool,
            pgbouncerReplicas: v.pgbouncerReplicas,
            postgresMaxConnections: v.postgresMaxConnections,
            reservedConnections: RESERVED_CONNECTIONS,
            loginRolesPerDatabase: LOGIN_SLOTS.length,
        });
        // Fixes with the numbers that make the budget fit (within each setting's range).
        if (budget.clientProblem) add("pgbouncerMaxClientConn", budget.clientProblem, `pulumi config set platform:pgbouncerMaxClientConn ${Math.min(100_000, budget.clients)}`);
        if (budget.serverProblem) {
            const needed = budget.serverConnections + RESERVED_CONNECTIONS;
            add("postgresMaxConnections", budget.serverProblem, needed <= 5000
                ? `pulumi config set platform:postgresMaxConnections ${needed}`
                : `pulumi config set platform:pgbouncerPoolSize ${Math.max(1, Math.floor((v.postgresMaxConnections - RESERVED_CONNECTIONS) / (budgeted.length * LOGIN_SLOTS.length * v.pgbouncerReplicas)) - v.pgbouncerReservePool)}`);
        }
    }
    return problems;
}

/** The settings after parsing: defaults applied, optional keys possibly undefined. */
const parsedDatabase = z.object(databaseSchemaShape);
export type ParsedDatabase = z.infer<typeof parsedDatabase>;

/** The backup bucket (backupS3*) when all its keys are set: the database's, and the app volumes'. */
export function backupBucketOf(v: Pick<ParsedDatabase, "backupS3Bucket" | "backupS3Endpoint" | "backupS3Region" | "backupS3AccessKey" | "backupS3SecretKey">): S3Settings | undefined {
    return v.backupS3Bucket && v.backupS3AccessKey && v.backupS3SecretKey ? {
        endpoint: v.backupS3Endpoint,
        bucket: v.backupS3Bucket,
        region: v.backupS3Region,
        accessKey: v.backupS3AccessKey,
        secretKey: v.backupS3SecretKey,
    } : undefined;
}

export function toDatabaseSettings(v: ParsedDatabase): DatabaseSettings {
    if (v.databaseMode === "external") {
        return { mode: "external", url: v.databaseUrl ?? "" };
    }
    return {
        mode: "cluster",
        instances: v.postgresInstances,
        major: v.postgresMajor as PostgresMajor,
        operator: v.cnpgOperator,
        storageClass: v.postgresStorageClass,
        importFrom: v.databaseImportUrl,
        storage: v.postgresStorage,
        cpu: v.postgresCpu,
        memory: v.postgresMemory,
        maxConnections: v.postgresMaxConnections,
        pgbouncer: {
            poolSize: v.pgbouncerPoolSize,
            reservePool: v.pgbouncerReservePool,
            maxClientConn: v.pgbouncerMaxClientConn,
            replicas: v.pgbouncerReplicas,
        },
        backup: {
            schedule: v.backupSchedule,
            retentionDays: v.backupRetentionDays,
            storage: v.backupStorage,
            s3: backupBucketOf(v),
        },
        restoreDrill: { schedule: v.restoreDrillSchedule, checkQuery: v.restoreDrillCheckQuery },
    };
}
