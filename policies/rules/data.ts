// Rules for what holds data.
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { connectionBudget, RESERVED_CONNECTIONS } from "./connection-budget";
import { monthlyCost } from "./cost";
import { configMapsOf, envValue, namespaceOf, podSpecOf } from "./pods";

const HOLDS_DATA = new Set(["kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:postgresql.cnpg.io/v1:Cluster"]);

export const dataProtected: ResourceValidationPolicy = {
    name: "data-protected",
    description: "Claims and database Clusters are protected, so no `pulumi up` or `destroy` deletes them by accident.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Create them with { protect: true, retainOnDelete: true }; to remove one on purpose, move its data first, then pulumi state unprotect.",
    validateResource: (args, reportViolation) => {
        if (HOLDS_DATA.has(args.type) && !args.opts.protect) reportViolation("it holds data and is not protected");
    },
};

export const poolerHighlyAvailable: ResourceValidationPolicy = {
    name: "pooler-highly-available",
    description: "The PgBouncer Pooler runs at least two instances, so losing a node or draining one never cuts every app from its database.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "pulumi config set platform:pgbouncerReplicas 2 (or more); the platform adds the PDB.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:postgresql.cnpg.io/v1:Pooler") return;
        if (((args.props.spec as { instances?: number } | undefined)?.instances ?? 1) < 2) reportViolation("the Pooler runs fewer than two instances");
    },
};

export const backupsAndDrillScheduled: StackValidationPolicy = {
    name: "backups-and-drill-scheduled",
    description: "Wherever a database Cluster runs, the daily dump and the weekly restore drill are scheduled and not suspended.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Keep the CronJobs postgres-backup and postgres-restore-drill of the database tier (backupSchedule, restoreDrillSchedule); never suspend them.",
    validateStack: (args, reportViolation) => {
        if (!args.resources.some((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster")) return;
        for (const name of ["postgres-backup", "postgres-restore-drill"]) {
            const cron = args.resources.find((r) => r.type === "kubernetes:batch/v1:CronJob" && (r.props.metadata as { name?: string } | undefined)?.name === name);
            if (!cron) reportViolation(`the CronJob ${name} is missing`);
            else if ((cron.props.spec as { suspend?: boolean } | undefined)?.suspend === true) reportViolation(`the CronJob ${name} is suspended`);
        }
    },
};

const ofType = (resources: readonly PolicyResource[], type: string) => resources.filter((r) => r.type === type);
const nameOf = (r: PolicyResource) => String((r.props.metadata as { name?: string } | undefined)?.name ?? "");

/** CloudNativePG's Barman Cloud plugin (plugin-barman-cloud v0.13.0): the Cluster archives WAL and base backups to an object store. */
const BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io";

export const offSiteBackups: StackValidationPolicy = {
    name: "off-site-backups",
    description: "The etcd snapshots, the database's WAL and base backups, and every claim a workload keeps data on also go to object storage outside the cluster, so losing every node or volume loses at most one backup interval (advisory by default; mandatory in a protected stack's policy config).",
    enforcementLevel: "advisory",
    severity: "high",
    remediationSteps: "Set etcdS3Bucket, etcdS3AccessKey and etcdS3SecretKey, and backupS3Bucket, backupS3AccessKey and backupS3SecretKey (pulumi config set --secret for the keys); Hetzner Object Storage works. With the backup bucket set, each app volume gets its scheduled snapshot Job.",
    validateStack: (args, reportViolation) => {
        const servers = args.resources.filter((r) => r.type === "hcloud:index/server:Server" && (r.props.labels as { role?: string } | undefined)?.role === "server");
        const etcdS3 = args.resources.some((r) => r.type === "kubernetes:core/v1:Secret" && r.props.type === "etcd.k3s.cattle.io/s3-config-secret");
        if (servers.length > 0 && !etcdS3) reportViolation("etcd snapshots stay on the servers' disks: no S3 configuration for k3s");
        for (const cluster of ofType(args.resources, "kubernetes:postgresql.cnpg.io/v1:Cluster")) {
            const plugins = ((cluster.props.spec as { plugins?: { name?: string; isWALArchiver?: boolean }[] } | undefined)?.plugins ?? []);
            if (!plugins.some((p) => p.name === BARMAN_PLUGIN && p.isWALArchiver === true)) reportViolation("the database archives no WAL or base backups to object storage", cluster.urn);
        }
        // A claim a long-running workload writes to: some scheduled, unsuspended Job must read it too (the app-volume snapshot).
        const claimsOf = (r: PolicyResource) => new Set((podVolumesOf(r) ?? []).flatMap((v) => (v.persistentVolumeClaim?.claimName ? [`${namespaceOf(r.props)}/${v.persistentVolumeClaim.claimName}`] : [])));
        const backedUp = new Set(ofType(args.resources, "kubernetes:batch/v1:CronJob")
            .filter((c) => (c.props.spec as { suspend?: boolean } | undefined)?.suspend !== true)
            .flatMap((c) => [...claimsOf(c)]));
        for (const workload of args.resources.filter((r) => WORKLOADS.has(r.type))) {
            for (const claim of claimsOf(workload)) {
                if (!backedUp.has(claim)) reportViolation(`the claim ${claim} holds ${nameOf(workload)}'s data and no scheduled Job copies it off-site`, workload.urn);
            }
        }
    },
};

const WORKLOADS = new Set(["kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"]);

function podVolumesOf(r: PolicyResource): { persistentVolumeClaim?: { claimName?: string } }[] | undefined {
    return (podSpecOf(r.type, r.props) as { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] } | undefined)?.volumes;
}

const DEFAULT_CONNECTIONS_PER_POD = 10;

export const connectionBudgetPolicy: StackValidationPolicy = {
    name: "connection-budget",
    description: "The apps' pods together never open more connections than PgBouncer accepts, and PgBouncer's pools never more than PostgreSQL allows, even at the autoscaler's maximum during a rollout.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Lower apps.<app>.env.DB_MAX_CONNECTIONS or the replicas, or raise pgbouncerMaxClientConn; for the server side raise postgresMaxConnections or lower pgbouncerPoolSize.",
    configSchema: {
        properties: {
            defaultConnectionsPerPod: { type: "integer", minimum: 1, default: DEFAULT_CONNECTIONS_PER_POD, description: "Pool size of an app that sets no DB_MAX_CONNECTIONS." },
        },
    },
    validateStack: (args, reportViolation) => {
        const perPodDefault = args.getConfig<{ defaultConnectionsPerPod?: number }>().defaultConnectionsPerPod ?? DEFAULT_CONNECTIONS_PER_POD;
        const pooler = ofType(args.resources, "kubernetes:postgresql.cnpg.io/v1:Pooler")[0];
        const cluster = ofType(args.resources, "kubernetes:postgresql.cnpg.io/v1:Cluster")[0];
        if (!pooler || !cluster) return;
        const clientNamespaces = new Set(ofType(args.resources, "kubernetes:core/v1:Namespace")
            .filter((n) => (n.props.metadata as { labels?: Record<string, string> } | undefined)?.labels?.["platform.io/database-client"] === "true")
            .map(nameOf));
        const configMaps = configMapsOf(args.resources);
        const autoscalers = ofType(args.resources, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler");
        const apps = ofType(args.resources, "kubernetes:apps/v1:Deployment").filter((d) => clientNamespaces.has(namespaceOf(d.props))).map((d) => {
            const spec = (d.props.spec ?? {}) as { replicas?: number; strategy?: { type?: string; rollingUpdate?: { maxSurge?: number } } };
            const hpa = autoscalers.find((h) => namespaceOf(h.props) === namespaceOf(d.props) && (h.props.spec as { scaleTargetRef?: { name?: string } } | undefined)?.scaleTargetRef?.name === nameOf(d));
            const pods = (hpa?.props.spec as { maxReplicas?: number } | undefined)?.maxReplicas ?? spec.replicas ?? 1;
            const surge = spec.strategy?.type === "Recreate" ? 0 : typeof spec.strategy?.rollingUpdate?.maxSurge === "number" ? spec.strategy.rollingUpdate.maxSurge : 1;
            const perPod = Math.max(...(podSpecOf(d.type, d.props)?.containers ?? []).map((c) => Number(envValue(c, namespaceOf(d.props), configMaps, "DB_MAX_CONNECTIONS") ?? perPodDefault)));
            return { name: nameOf(d), maxPods: pods + surge, perPod };
        });
        const pgbouncer = (pooler.props.spec as { instances?: number; pgbouncer?: { parameters?: Record<string, string> } } | undefined) ?? {};
        const params = pgbouncer.pgbouncer?.parameters ?? {};
        const roles = (cluster.props.spec as { managed?: { roles?: { login?: boolean }[] } } | undefined)?.managed?.roles ?? [];
        const databases = Math.max(1, ofType(args.resources, "kubernetes:postgresql.cnpg.io/v1:Database").length);
        const maxConnections = (cluster.props.spec as { postgresql?: { parameters?: Record<string, string> } } | undefined)?.postgresql?.parameters?.max_connections;
        // PgBouncer's and PostgreSQL's own defaults when a parameter is not set.
        const budget = connectionBudget(apps, {
            maxClientConn: Number(params.max_client_conn ?? 100),
            poolSize: Number(params.default_pool_size ?? 20),
            reservePoolSize: Number(params.reserve_pool_size ?? 0),
            pgbouncerReplicas: pgbouncer.instances ?? 1,
            postgresMaxConnections: Number(maxConnections ?? 100),
            reservedConnections: RESERVED_CONNECTIONS,
            loginRolesPerDatabase: Math.max(1, Math.ceil(roles.filter((r) => r.login === true).length / databases)),
        });
        if (budget.clientProblem) reportViolation(budget.clientProblem, pooler.urn);
        if (budget.serverProblem) reportViolation(budget.serverProblem, cluster.urn);
    },
};

export const monthlyCostCap: StackValidationPolicy = {
    name: "monthly-cost-cap",
    description: "The stack's monthly cost at Hetzner's list prices stays under the cap set in the policy config (no cap, no check).",
    enforcementLevel: "mandatory",
    severity: "medium",
    remediationSteps: "Use fewer or smaller servers (controlPlaneServerType, agentServerType, agentCount) or smaller volumes, or raise monthly-cost-cap.maxMonthlyEur in the stack's policy config.",
    configSchema: {
        properties: { maxMonthlyEur: { type: "number", exclusiveMinimum: 0, description: "Cap in EUR per month, excluding VAT." } },
    },
    validateStack: (args, reportViolation) => {
        const cap = args.getConfig<{ maxMonthlyEur?: number }>().maxMonthlyEur;
        if (cap === undefined) return;
        const resources = args.resources.map((r) => ({ type: r.type, inputs: r.props }));
        let total: number;
        try {
            total = monthlyCost(resources, resources.some((r) => r.type === "hcloud:index/server:Server")).total;
        } catch {
            reportViolation("the cost cannot be computed: a server type or volume size has no list price in the pack's table");
            return;
        }
        if (total > cap) reportViolation(`the stack costs EUR ${total.toFixed(2)} a month, above the cap of EUR ${cap.toFixed(2)}`);
    },
};

export const DATA_POLICIES = [dataProtected, poolerHighlyAvailable, backupsAndDrillScheduled, offSiteBackups, connectionBudgetPolicy, monthlyCostCap];
