// Settings fixed once the platform exists. The program exports them as the
// stack output `establishedSettings`; on the next run it reads its own stack's
// last outputs (a StackReference to itself, as pulumi/pulumi's
// tests/integration/stack_reference does) and refuses, before any resource is
// registered, an edit that would rebuild or break what exists: a new cluster
// name (it names every resource: renaming rebuilds the whole platform with an
// empty database; `pulumi stack rename` changes the default), location or
// network ranges, a smaller database volume, an older PostgreSQL, or another
// database mode. Fewer control-plane servers are refused from the live servers
// (cluster/topology-guard.ts): the documented removal deletes them first. The offline render plays the
// earlier outputs from `--compare DIR`.
import * as pulumi from "@pulumi/pulumi";
import type { ConfigProblem } from "./config-schema";
import { ConfigError, type PlatformConfig } from "./config";

export const ESTABLISHED_OUTPUT = "establishedSettings";

/** What the stack was deployed with; every field optional: earlier releases exported fewer. */
export interface EstablishedSettings {
    readonly mode?: string;
    readonly clusterName?: string;
    readonly location?: string;
    readonly networkCidr?: string;
    readonly subnetCidr?: string;
    /** Existing mode: the kubeconfig context the platform was deployed to. */
    readonly kubeContext?: string;
    readonly databaseMode?: string;
    readonly cnpgOperator?: string;
    /** Existing mode: the StorageClass the database and backup volumes were created on. */
    readonly postgresStorageClass?: string;
    readonly postgresStorage?: string;
    readonly postgresMajor?: number;
    readonly backupStorage?: string;
    /** Each app volume: its size and the StorageClass it was created on (absent: the default). */
    readonly appVolumes?: Readonly<Record<string, { readonly size: string; readonly storageClass?: string }>>;
}

/** The settings to export after this run. */
export function establishedSettings(config: PlatformConfig): EstablishedSettings {
    const db = config.database;
    return {
        mode: config.mode,
        clusterName: config.cluster.name,
        ...(config.mode === "hetzner" ? {
            location: config.cluster.location,
            networkCidr: config.cluster.networkCidr,
            subnetCidr: config.cluster.subnetCidr,
        } : config.cluster.context !== undefined ? { kubeContext: config.cluster.context } : {}),
        ...(db ? { databaseMode: db.mode } : {}),
        ...(db?.mode === "cluster" ? {
            cnpgOperator: db.operator,
            ...(config.mode === "existing" && db.storageClass !== undefined ? { postgresStorageClass: db.storageClass } : {}),
            postgresStorage: db.storage, postgresMajor: db.major, backupStorage: db.backup.storage,
        } : {}),
        ...(config.apps.some((a) => a.volume) ? {
            appVolumes: Object.fromEntries(config.apps.filter((a) => a.volume).map((a) => [a.name, {
                size: a.volume?.size ?? "",
                ...(a.volume?.storageClass !== undefined ? { storageClass: a.volume.storageClass } : {}),
            }])),
        } : {}),
    };
}

const RUNBOOK = "docs/operations.md";

function gib(quantity: string): number | undefined {
    const m = /^(\d+)Gi$/.exec(quantity);
    return m ? Number(m[1]) : undefined;
}

/** Edits of `config` that the stack deployed with `earlier` must not take; empty for a new stack or a safe edit. */
export function establishedSettingsProblems(config: PlatformConfig, earlier: EstablishedSettings | undefined): ConfigProblem[] {
    if (!earlier) return [];
    const now = establishedSettings(config);
    const problems: ConfigProblem[] = [];
    const add = (key: string, message: string, fix: string) => problems.push({ key: `platform:${key}`, message, fix });
    if (earlier.mode !== undefined && earlier.mode !== now.mode) {
        add("mode", `the stack was deployed in ${earlier.mode} mode; switching to ${now.mode} would delete everything it created. `
            + `Deploy the other mode in a new stack and move the apps (${RUNBOOK}, "Destroy and rebuild")`, `pulumi config set platform:mode ${earlier.mode}`);
        return problems;
    }
    if (earlier.clusterName !== undefined && earlier.clusterName !== now.clusterName) {
        add("clusterName", `the cluster was created as '${earlier.clusterName}' and its name is in every resource's name: '${now.clusterName}' would build a `
            + "second platform with an empty database and delete this one. The name is fixed at creation (after `pulumi stack rename`, set it to the old name)",
            `pulumi config set platform:clusterName ${earlier.clusterName}`);
    }
    const createOnly: [keyof EstablishedSettings, string, string][] = [
        ["location", "location", "a new location would replace every server and its etcd data"],
        ["networkCidr", "networkCidr", "a new range would re-create the network and re-address every node under etcd"],
        ["subnetCidr", "subnetCidr", "a new subnet would re-address every node under etcd"],
    ];
    for (const [field, key, why] of createOnly) {
        if (earlier[field] !== undefined && earlier[field] !== now[field]) {
            add(key, `the cluster was created with ${earlier[field]}; ${why}. It is fixed at creation: build a new cluster and migrate (${RUNBOOK}, "Destroy and rebuild")`,
                `pulumi config set platform:${key} ${earlier[field]}`);
        }
    }
    if (earlier.databaseMode === "cluster" && now.databaseMode !== "cluster") {
        add("databaseMode", "the in-cluster database holds the apps' data; removing it or switching to an external database would delete the Cluster object "
            + "(its volumes are retained, but nothing runs them). Move the data first (docs/database.md), then remove the tier in a separate, reviewed change",
            "pulumi config set platform:databaseMode cluster");
    }
    if (earlier.kubeContext !== undefined && earlier.kubeContext !== now.kubeContext) {
        add("kubeContext", `the platform was deployed to context '${earlier.kubeContext}'; another context is another cluster to the Kubernetes provider, `
            + "which would re-create every object there (an empty database) and delete them here. Deploy to another cluster from a new stack",
            `pulumi config set platform:kubeContext ${earlier.kubeContext}`);
    }
    if (earlier.cnpgOperator === "install" && now.databaseMode === "cluster" && now.cnpgOperator === "existing") {
        add("cnpgOperator", "this stack installed the CloudNativePG operator with its CRDs; uninstalling it deletes the CRDs and with them every Cluster. "
            + "Keep it installed here (docs/database.md)", "pulumi config set platform:cnpgOperator install");
    }
    if (earlier.postgresStorageClass !== undefined && now.databaseMode === "cluster" && earlier.postgresStorageClass !== now.postgresStorageClass) {
        add("postgresStorageClass", `the database and backup volumes were created on StorageClass '${earlier.postgresStorageClass}'; a claim's class cannot `
            + "change (the backup claim would be replaced, its backups with it). To move the data, restore into a Cluster created on the new class (docs/database.md)",
            `pulumi config set platform:postgresStorageClass ${earlier.postgresStorageClass}`);
    }
    const noShrink: [keyof EstablishedSettings, string, string][] = [
        ["postgresStorage", "the database volumes", "CloudNativePG refuses it. To use less, dump and restore into a new, smaller Cluster (docs/database.md)"],
        ["backupStorage", "the backup volume", "Kubernetes refuses it"],
    ];
    for (const [field, what, why] of noShrink) {
        const before = typeof earlier[field] === "string" ? gib(earlier[field] as string) : undefined;
        const after = typeof now[field] === "string" ? gib(now[field] as string) : undefined;
        if (before !== undefined && after !== undefined && after < before) {
            add(field, `${what} ${field === "backupStorage" ? "is" : "are"} ${String(earlier[field])}; a volume cannot shrink (${why})`, `pulumi config set platform:${field} ${String(earlier[field])}`);
        }
    }
    for (const [app, before] of Object.entries(earlier.appVolumes ?? {})) {
        const after = now.appVolumes?.[app];
        if (!after) continue;
        const [was, is] = [gib(before.size), gib(after.size)];
        if (was !== undefined && is !== undefined && is < was) {
            add(`apps.${app}.volume.size`, `the volume is ${before.size}; a volume cannot shrink (Kubernetes refuses it). To use less, copy the data to a new app volume`,
                `pulumi config set --path 'platform:apps.${app}.volume.size' ${before.size}`);
        }
        if (before.storageClass !== after.storageClass) {
            add(`apps.${app}.volume.storageClass`, `the volume was created on ${before.storageClass === undefined ? "the default StorageClass" : `StorageClass '${before.storageClass}'`}; `
                + "a claim's class cannot change (the claim, and its data, would be replaced)",
                before.storageClass === undefined ? `pulumi config rm --path 'platform:apps.${app}.volume.storageClass'`
                    : `pulumi config set --path 'platform:apps.${app}.volume.storageClass' ${before.storageClass}`);
        }
    }
    if (earlier.postgresMajor !== undefined && now.postgresMajor !== undefined && now.postgresMajor < earlier.postgresMajor) {
        add("postgresMajor", `the data directory is PostgreSQL ${earlier.postgresMajor}; an older major cannot read it. Restore a dump into a new Cluster instead`,
            `pulumi config set platform:postgresMajor ${earlier.postgresMajor}`);
    }
    return problems;
}

/** The settings this stack was last deployed with: its own last outputs; undefined for a new stack. */
export async function readEstablishedSettings(): Promise<EstablishedSettings | undefined> {
    const self = new pulumi.StackReference("established-settings", { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` });
    const details = await self.getOutputDetails(ESTABLISHED_OUTPUT);
    const value = details.value ?? details.secretValue;
    return typeof value === "object" && value !== null ? value as EstablishedSettings : undefined;
}

/** Throws a ConfigError (as bad config does) for an edit the deployed stack must not take. */
export async function refuseEstablishedSettingsEdits(config: PlatformConfig): Promise<void> {
    const problems = establishedSettingsProblems(config, await readEstablishedSettings());
    if (problems.length > 0) throw new ConfigError(problems);
}
