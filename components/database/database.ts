// The in-cluster database tier on CloudNativePG: the operator, a Cluster of
// PostgreSQL instances (a primary and streaming replicas, automatic failover)
// on a retained, protected volume each, a Pooler (PgBouncer, transaction mode),
// an owner role, two alternating login roles and a database per app, daily
// logical dumps to a retained volume (and optionally S3), and a weekly restore
// drill. Passwords are 32 hex characters from @pulumi/random, kept secret.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { cronJobSpec, denyMetadataPolicy, JOB_TIMEOUTS, REPLACE_UNREADY_ANNOTATION, RESTRICTED_CONTAINER, ScheduledJob } from "../apps/app-render";
import type { ClusterDatabaseSettings } from "./database-config";
import {
    activeSlot, CNPG_CLUSTER, CNPG_POOLER, cnpgClusterSpec, cnpgDatabaseSpec, cnpgPoolerSpec, LOGIN_SLOTS, loginRole, LoginSlot, loginSecretName,
    IMPORT_SECRET, ImportSource, importSource, OBJECT_STORE, objectStoreSpec, PITR_DRILL_CLUSTER, pitrDrillCluster, postgresUrl, scheduledBackupSpec,
    slotGenerations,
} from "./database-render";
import { readScript } from "../cluster/k3s-render";
import { OFFSITE_REMOTE, rcloneOffsiteEnv, S3_CREDENTIAL_KEYS } from "../object-storage";
import { CNPG_CHART_REPO, POSTGRES_IMAGES, VERSIONS } from "../versions";

export const DATABASE_NAMESPACE = "database";
export const DATABASE_CLIENT_LABEL = "platform.io/database-client";
/** Where the CloudNativePG operator runs; it reaches the instances' status port. */
export const CNPG_OPERATOR_NAMESPACE = "cnpg-system";
/** CloudNativePG's services: `<cluster>-rw` is the primary; the Pooler's service is named after it. */
export const POSTGRES_HOST = `${CNPG_CLUSTER}-rw.${DATABASE_NAMESPACE}.svc.cluster.local`;
export const PGBOUNCER_HOST = `${CNPG_POOLER}.${DATABASE_NAMESPACE}.svc.cluster.local`;
/** The user of CloudNativePG's PostgreSQL images. */
const POSTGRES_UID = 26;
// Mounted together at /scripts: the others source pg-common.sh from their own directory.
const SCRIPTS = ["pg-common.sh", "pg-backup.sh", "pg-restore.sh", "pg-restore-drill.sh", "pg-drill-server.sh", "pg-pitr-drill-check.sh", "db-grants.sh", "db-login-check.sh"];
/** uid of the distroless kubectl image's conventional non-root user (it has none of its own). */
const KUBECTL_UID = 65532;

export interface DatabaseApp {
    readonly name: string;
    readonly passwordVersion: number;
}

export interface DatabaseArgs {
    readonly settings: ClusterDatabaseSettings;
    readonly apps: readonly DatabaseApp[];
    /** StorageClass for the data and backup volumes; undefined: the cluster's default. */
    readonly storageClass?: string;
    readonly provider: k8s.Provider;
    /** What proves the cluster schedules pods (the operator's install waits for it). */
    readonly clusterReady?: pulumi.Resource[];
    /** cert-manager when this program installs it: the backup plugin's TLS needs it. */
    readonly certManager?: pulumi.Resource[];
    /** A kubectl image within the cluster's version skew (the object-store drill drives its scratch Cluster). */
    readonly kubectlImage: string;
}

/** What an app needs: its two URLs (secrets) and what must be rolled out before it. */
export interface AppDatabase {
    /** Through PgBouncer, in seed 001's format: postgresql://<login role>:<pw>@<pooler>:5432/<db>. */
    readonly url: pulumi.Output<string>;
    /** Straight to the primary, for migrations only (advisory locks need a session). */
    readonly directUrl: pulumi.Output<string>;
    /** The new login works through the pooler before the app's Secret changes. */
    readonly ready: pulumi.Resource[];
}

const labels = (component: string) => ({
    "app.kubernetes.io/name": component,
    "app.kubernetes.io/part-of": "platform",
    "app.kubernetes.io/managed-by": "pulumi",
});

/** A CronJob of the database tier, named by its component label `id`. */
function databaseCronJob(resourceName: string, c: Omit<ScheduledJob, "labels"> & { readonly id: string }, opts: pulumi.CustomResourceOptions): k8s.batch.v1.CronJob {
    return new k8s.batch.v1.CronJob(resourceName, {
        metadata: { name: c.id, namespace: DATABASE_NAMESPACE, labels: labels(c.id) },
        spec: cronJobSpec({ ...c, labels: labels(c.id) }),
    }, opts);
}

/** libpq settings for the scripts, as the superuser (CloudNativePG's Secret <cluster>-superuser). */
function superuserEnv(): k8s.types.input.core.v1.EnvVar[] {
    return [
        { name: "PGHOST", value: POSTGRES_HOST },
        { name: "PGPORT", value: "5432" },
        { name: "PGUSER", value: "postgres" },
        { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: `${CNPG_CLUSTER}-superuser`, key: "password" } } },
    ];
}

export class Database extends pulumi.ComponentResource {
    readonly connections: Record<string, AppDatabase> = {};
    private readonly image: string;

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:Database", name, {}, opts);
        const s = args.settings;
        this.image = POSTGRES_IMAGES[s.major];
        const child = { parent: this, provider: args.provider };
        // The component's dependencies (the StorageClass and CSI driver) hold back everything below.
        // Deleting the namespace deletes the claims in it: protected and retained like them.
        const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
            metadata: { name: DATABASE_NAMESPACE, labels: { ...labels("database"), "pod-security.kubernetes.io/enforce": "restricted" } },
        }, { ...child, dependsOn: opts?.dependsOn, protect: true, retainOnDelete: true });
        const inNs = { ...child, dependsOn: [ns] };

        const operator: pulumi.Resource[] = [];
        if (s.operator === "install") {
            // Helm waits for the operator, its webhook and its CRDs (Established) before any
            // CloudNativePG object is created; its pods need a node that schedules them.
            operator.push(new k8s.helm.v3.Release(`${name}-cnpg`, {
                name: "cnpg",
                chart: "cloudnative-pg",
                version: VERSIONS.cnpgChart,
                repositoryOpts: { repo: CNPG_CHART_REPO },
                namespace: CNPG_OPERATOR_NAMESPACE,
                createNamespace: true,
                values: { crds: { create: true } },
                timeout: 900,
            }, { ...child, dependsOn: args.clusterReady ?? [] }));
        }

        // 16 random bytes = 32 hex characters, as seed 001. Each login role's password changes
        // only when a rotation makes it the active one (database-render.ts slotGenerations).
        const loginSecrets: pulumi.Resource[] = [];
        const passwords = new Map<string, pulumi.Output<string>>();
        for (const app of args.apps) {
            const generations = slotGenerations(app.passwordVersion);
            for (const slot of LOGIN_SLOTS) {
                const password = new random.RandomBytes(`${name}-${app.name}-login-${slot}-password`, {
                    length: 16,
                    keepers: { generation: String(generations[slot]) },
                }, { parent: this }).hex;
                passwords.set(`${app.name}/${slot}`, password);
                loginSecrets.push(new k8s.core.v1.Secret(`${name}-${app.name}-login-${slot}`, {
                    // The operator applies a change of a labelled Secret at once (internal/controller/cluster_predicates.go).
                    metadata: { name: loginSecretName(app.name, slot), namespace: DATABASE_NAMESPACE, labels: { ...labels("postgres"), "cnpg.io/reload": "true" } },
                    type: "kubernetes.io/basic-auth",
                    stringData: { username: loginRole(app.name, slot), password },
                }, inNs));
            }
        }

        // With S3-compatible storage: WAL archiving and daily base backups (point-in-time recovery).
        const s3 = s.backup.s3;
        const pitr: pulumi.Resource[] = [];
        if (s3) {
            pitr.push(new k8s.core.v1.Secret(`${name}-backup-s3`, {
                metadata: { name: "backup-s3", namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
                stringData: { [S3_CREDENTIAL_KEYS.accessKey]: s3.accessKey, [S3_CREDENTIAL_KEYS.secretKey]: pulumi.secret(s3.secretKey) },
            }, inNs));
            if (s.operator === "install") {
                // In the operator's namespace, as the plugin requires; its TLS certificates come from cert-manager.
                pitr.push(new k8s.helm.v3.Release(`${name}-barman-cloud`, {
                    name: "barman-cloud",
                    chart: "plugin-barman-cloud",
                    version: VERSIONS.barmanCloudChart,
                    repositoryOpts: { repo: CNPG_CHART_REPO },
                    namespace: CNPG_OPERATOR_NAMESPACE,
                    timeout: 900,
                }, { ...child, dependsOn: [...operator, ...(args.certManager ?? [])] }));
            }
            pitr.push(new k8s.apiextensions.CustomResource(`${name}-object-store`, {
                apiVersion: "barmancloud.cnpg.io/v1",
                kind: "ObjectStore",
                metadata: { name: OBJECT_STORE, namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
                spec: objectStoreSpec({ endpoint: s3.endpoint, bucket: s3.bucket, credentialsSecret: "backup-s3" }, s.backup.retentionDays),
            }, { ...child, dependsOn: [...pitr] }));
        }

        // Import at creation: the first (only) database app's database starts as a copy of the source.
        let importFrom: { readonly app: string; readonly source: pulumi.Output<ImportSource> } | undefined;
        if (s.importFrom !== undefined && args.apps.length === 1) {
            const parsed = pulumi.output(s.importFrom).apply(importSource);
            pitr.push(new k8s.core.v1.Secret(`${name}-import`, {
                metadata: { name: IMPORT_SECRET, namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
                stringData: { password: pulumi.secret(parsed.apply((p) => p.password)) },
            }, inNs));
            // Host, user and database name are not secret: keep the Cluster's spec readable.
            importFrom = { app: args.apps[0].name, source: pulumi.unsecret(parsed.apply((p) => p.source)) };
        }

        const clusterSpec = (imported?: { app: string; source: ImportSource }) => cnpgClusterSpec({
            settings: s, image: this.image, storageClass: args.storageClass, apps: args.apps.map((a) => a.name),
            objectStore: s3 ? OBJECT_STORE : undefined, importFrom: imported,
        });
        const cluster = new k8s.apiextensions.CustomResource(`${name}-cluster`, {
            apiVersion: "postgresql.cnpg.io/v1",
            kind: "Cluster",
            metadata: { name: CNPG_CLUSTER, namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            spec: importFrom ? importFrom.source.apply((source) => clusterSpec({ app: importFrom.app, source })) : clusterSpec(),
        }, {
            ...child,
            dependsOn: [ns, ...operator, ...loginSecrets, ...pitr],
            protect: true,
            retainOnDelete: true,
            // CloudNativePG reads how a Cluster starts only when it is created: an import set,
            // changed or removed later changes nothing, so Pulumi does not try to either.
            ignoreChanges: ["spec.bootstrap", "spec.externalClusters"],
        });
        if (s3) {
            new k8s.apiextensions.CustomResource(`${name}-base-backup`, {
                apiVersion: "postgresql.cnpg.io/v1",
                kind: "ScheduledBackup",
                metadata: { name: "postgres-daily", namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
                spec: scheduledBackupSpec(s.backup.schedule),
            }, { ...child, dependsOn: [cluster] });
        }

        const pooler = new k8s.apiextensions.CustomResource(`${name}-pooler`, {
            apiVersion: "postgresql.cnpg.io/v1",
            kind: "Pooler",
            metadata: { name: CNPG_POOLER, namespace: DATABASE_NAMESPACE, labels: labels(CNPG_POOLER) },
            spec: cnpgPoolerSpec(s, VERSIONS.pgbouncer),
        }, { ...child, dependsOn: [cluster] });
        // The operator makes none for poolers: drains take one PgBouncer at a time.
        new k8s.policy.v1.PodDisruptionBudget(`${name}-pooler-pdb`, {
            metadata: { name: CNPG_POOLER, namespace: DATABASE_NAMESPACE, labels: labels(CNPG_POOLER) },
            spec: { maxUnavailable: 1, selector: { matchLabels: { "cnpg.io/poolerName": CNPG_POOLER } } },
        }, inNs);

        const databases = args.apps.map((app) => new k8s.apiextensions.CustomResource(`${name}-${app.name}-db`, {
            apiVersion: "postgresql.cnpg.io/v1",
            kind: "Database",
            metadata: { name: `${app.name}-db`, namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            spec: cnpgDatabaseSpec(app.name),
        }, { ...child, dependsOn: [cluster], retainOnDelete: true }));

        const scripts = new k8s.core.v1.ConfigMap(`${name}-scripts`, {
            metadata: { name: "db-scripts", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            data: Object.fromEntries(SCRIPTS.map((f) => [f, readScript(f)])),
        }, inNs);

        // CONNECT only for each app's owner role; login roles act as the owner.
        const appNames = args.apps.map((a) => a.name);
        const grants = new k8s.batch.v1.Job(`${name}-grants`, {
            metadata: {
                name: `db-grants-${createHash("sha256").update(JSON.stringify(appNames)).digest("hex").slice(0, 10)}`,
                namespace: DATABASE_NAMESPACE,
                labels: labels("db-grants"),
                annotations: { [REPLACE_UNREADY_ANNOTATION]: "true" },
            },
            spec: {
                backoffLimit: 6,
                activeDeadlineSeconds: 900,
                template: {
                    metadata: { labels: labels("db-grants") },
                    spec: this.scriptPod("db-grants.sh", superuserEnv(), [], "OnFailure", appNames),
                },
            },
        }, { ...inNs, dependsOn: [ns, scripts, ...databases], customTimeouts: JOB_TIMEOUTS });

        const backups = new k8s.core.v1.PersistentVolumeClaim(`${name}-backups`, {
            metadata: { name: "postgres-backups", namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
            spec: {
                accessModes: ["ReadWriteOnce"],
                ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
                resources: { requests: { storage: s.backup.storage } },
            },
        }, { ...inNs, protect: true, retainOnDelete: true });
        this.backupJobs(name, s, { ...inNs, dependsOn: [ns, backups, scripts, cluster] });
        if (s3) this.objectStoreDrill(name, s, appNames, args.kubectlImage, { ...inNs, dependsOn: [ns, scripts, cluster] });

        new k8s.networking.v1.NetworkPolicy(`${name}-allow-clients`, {
            metadata: { name: "allow-database-clients", namespace: DATABASE_NAMESPACE, labels: labels("database") },
            spec: {
                podSelector: {},
                policyTypes: ["Ingress"],
                ingress: [
                    // This namespace (replication, the pooler, jobs) and the namespaces of apps with a database.
                    {
                        from: [{ podSelector: {} }, { namespaceSelector: { matchLabels: { [DATABASE_CLIENT_LABEL]: "true" } } }],
                        ports: [{ port: 5432, protocol: "TCP" }],
                    },
                    // The operator asks each instance for its status (port 8000) and runs SQL on it.
                    {
                        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": CNPG_OPERATOR_NAMESPACE } } }],
                        ports: [{ port: 8000, protocol: "TCP" }, { port: 5432, protocol: "TCP" }],
                    },
                ],
            },
        }, inNs);
        new k8s.networking.v1.NetworkPolicy(`${name}-deny-cloud-metadata`, denyMetadataPolicy(DATABASE_NAMESPACE, labels("database")), inNs);

        for (const app of args.apps) {
            const slot: LoginSlot = activeSlot(app.passwordVersion);
            const user = loginRole(app.name, slot);
            const password = passwords.get(`${app.name}/${slot}`) as pulumi.Output<string>;
            // The new login works through the pooler before any pod gets it.
            const check = new k8s.batch.v1.Job(`${name}-${app.name}-login-check`, {
                metadata: {
                    name: `db-login-check-${app.name}-v${app.passwordVersion}`.slice(0, 63),
                    namespace: DATABASE_NAMESPACE,
                    labels: labels("db-login-check"),
                    annotations: { [REPLACE_UNREADY_ANNOTATION]: "true" },
                },
                spec: {
                    backoffLimit: 0,
                    // Above CHECK_TIMEOUT, below Pulumi's wait for the Job (JOB_TIMEOUTS).
                    activeDeadlineSeconds: 1080,
                    template: {
                        metadata: { labels: labels("db-login-check") },
                        spec: this.scriptPod("db-login-check.sh", [
                            { name: "PGHOST", value: PGBOUNCER_HOST },
                            { name: "PGPORT", value: "5432" },
                            { name: "PGDATABASE", value: app.name },
                            { name: "PGUSER", value: user },
                            { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: loginSecretName(app.name, slot), key: "password" } } },
                            // A first deploy waits here for the operator to bring up the Cluster and the Pooler.
                            { name: "CHECK_TIMEOUT", value: "840" },
                        ], [], "Never"),
                    },
                },
            }, { ...inNs, dependsOn: [ns, scripts, pooler, grants, ...loginSecrets], customTimeouts: JOB_TIMEOUTS });
            // Inside the cluster the pooler speaks plain TCP to apps (NetworkPolicy-restricted) and TLS to PostgreSQL.
            this.connections[app.name] = {
                url: pulumi.secret(password.apply((p) => postgresUrl({ user, password: p, host: PGBOUNCER_HOST, port: 5432, database: app.name, params: { sslmode: "disable" } }))),
                directUrl: pulumi.secret(password.apply((p) => postgresUrl({ user, password: p, host: POSTGRES_HOST, port: 5432, database: app.name, params: { sslmode: "disable" } }))),
                ready: [check],
            };
        }
        this.registerOutputs({ host: PGBOUNCER_HOST, databases: appNames });
    }

    /** A pod that runs one of our scripts in the PostgreSQL image, as its postgres user. */
    private scriptPod(script: string, env: k8s.types.input.core.v1.EnvVar[],
        extra: { volume: k8s.types.input.core.v1.Volume; mount: k8s.types.input.core.v1.VolumeMount }[],
        restartPolicy: "Never" | "OnFailure", args: readonly string[] = []): k8s.types.input.core.v1.PodSpec {
        return {
            restartPolicy,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID, fsGroup: POSTGRES_UID, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
            containers: [{
                name: script.replace(/\.sh$/, ""),
                image: this.image,
                command: ["bash", `/scripts/${script}`, ...args],
                env,
                resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } },
                securityContext: RESTRICTED_CONTAINER,
                volumeMounts: [
                    { name: "scripts", mountPath: "/scripts", readOnly: true },
                    { name: "tmp", mountPath: "/tmp" },
                    ...extra.map((e) => e.mount),
                ],
            }],
            volumes: [
                { name: "scripts", configMap: { name: "db-scripts", defaultMode: 0o555 } },
                { name: "tmp", emptyDir: {} },
                ...extra.map((e) => e.volume),
            ],
        };
    }

    private backupJobs(name: string, s: ClusterDatabaseSettings, opts: pulumi.CustomResourceOptions): void {
        const backupsVolume = { volume: { name: "backups", persistentVolumeClaim: { claimName: "postgres-backups" } }, mount: { name: "backups", mountPath: "/backups" } };
        const backupPod = this.scriptPod("pg-backup.sh", [
            ...superuserEnv(),
            { name: "BACKUP_DIR", value: "/backups" },
            { name: "RETENTION_DAYS", value: String(s.backup.retentionDays) },
        ], [backupsVolume], "Never");
        const s3 = s.backup.s3;
        // With S3: dump first (init container), then copy off-site. `copy` never deletes remotely:
        // an emptied local volume must not wipe the off-site copies (S3 lifecycle rules expire them).
        const spec: k8s.types.input.core.v1.PodSpec = s3 ? {
            ...backupPod,
            initContainers: backupPod.containers,
            containers: [{
                name: "upload",
                image: VERSIONS.rclone,
                args: ["copy", "/backups", `${OFFSITE_REMOTE}:${s3.bucket}/postgres`, "--exclude", ".*.partial/**", "--immutable"],
                env: rcloneOffsiteEnv(s3, "backup-s3"),
                resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "512Mi" } },
                securityContext: RESTRICTED_CONTAINER,
                volumeMounts: [{ name: "backups", mountPath: "/backups", readOnly: true }, { name: "tmp", mountPath: "/tmp" }],
            }],
        } : backupPod;

        const cronJob = (id: string, schedule: string, pod: k8s.types.input.core.v1.PodSpec, deadlineSeconds: number, suspend = false) =>
            databaseCronJob(`${name}-${id}`, { id, schedule, pod, deadlineSeconds, suspend }, opts);
        cronJob("postgres-backup", s.backup.schedule, spec, 6 * 3600);
        // Never scheduled: a template for `kubectl create job --from=cronjob/postgres-restore` (docs/database.md).
        const restorePod = this.scriptPod("pg-restore.sh", [
            ...superuserEnv(),
            { name: "BACKUP_DIR", value: "/backups" },
            { name: "SOURCE_DB", value: "" },
            { name: "TARGET_DB", value: "" },
            { name: "BACKUP_ID", value: "" },
            { name: "RESTORE_FORCE", value: "" },
        ], [{ ...backupsVolume, mount: { ...backupsVolume.mount, readOnly: true } }], "Never");
        const [restoreContainer] = restorePod.containers as k8s.types.input.core.v1.Container[];
        restoreContainer.command = ["bash", "-c",
            'exec bash /scripts/pg-restore.sh ${RESTORE_FORCE:+--force} "${SOURCE_DB:?set SOURCE_DB}" "${TARGET_DB:?set TARGET_DB}" ${BACKUP_ID:+"$BACKUP_ID"}'];
        cronJob("postgres-restore", s.backup.schedule, restorePod, 6 * 3600, true);
        // The drill restores into a throwaway server inside its own pod (pg-drill-server.sh):
        // it gets no credentials for production and never connects to it.
        cronJob("postgres-restore-drill", s.restoreDrill.schedule, this.scriptPod("pg-drill-server.sh", [
            { name: "BACKUP_DIR", value: "/backups" },
            { name: "DRILL_WORK_DIR", value: "/tmp" },
            ...(s.restoreDrill.checkQuery ? [{ name: "DRILL_CHECK_QUERY", value: s.restoreDrill.checkQuery }] : []),
        ], [{ ...backupsVolume, mount: { ...backupsVolume.mount, readOnly: true } }], "Never"), 6 * 3600);
    }

    /**
     * The object-store drill: a scratch Cluster recovered from the WAL archive and
     * base backups, checked, and deleted; it never addresses production. kubectl's
     * image has no shell, so each step is a container of its own, in order: remove a
     * leftover, create the Cluster (from the ConfigMap), make this pod its owner, wait
     * until it is Ready, check it (PostgreSQL image), delete it. When a step fails the
     * rest do not run, but the Cluster goes with its owner pod: when the Job expires
     * (ttlSecondsAfterFinished), or at the next run's first step.
     */
    private objectStoreDrill(name: string, s: ClusterDatabaseSettings, databases: readonly string[], kubectlImage: string, opts: pulumi.CustomResourceOptions): void {
        const id = "postgres-pitr-drill";
        const cluster = `cluster.postgresql.cnpg.io/${PITR_DRILL_CLUSTER}`;
        const account = new k8s.core.v1.ServiceAccount(`${name}-pitr-drill-sa`, {
            metadata: { name: id, namespace: DATABASE_NAMESPACE, labels: labels(id) },
        }, opts);
        const role = new k8s.rbac.v1.Role(`${name}-pitr-drill-role`, {
            metadata: { name: id, namespace: DATABASE_NAMESPACE, labels: labels(id) },
            rules: [
                // Create cannot be limited by name; everything else only on the scratch Cluster.
                { apiGroups: ["postgresql.cnpg.io"], resources: ["clusters"], verbs: ["create"] },
                { apiGroups: ["postgresql.cnpg.io"], resources: ["clusters"], resourceNames: [PITR_DRILL_CLUSTER], verbs: ["get", "list", "watch", "patch", "delete"] },
            ],
        }, opts);
        const binding = new k8s.rbac.v1.RoleBinding(`${name}-pitr-drill-binding`, {
            metadata: { name: id, namespace: DATABASE_NAMESPACE, labels: labels(id) },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: id },
            subjects: [{ kind: "ServiceAccount", name: id, namespace: DATABASE_NAMESPACE }],
        }, opts);
        const manifest = new k8s.core.v1.ConfigMap(`${name}-pitr-drill-cluster`, {
            metadata: { name: id, namespace: DATABASE_NAMESPACE, labels: labels(id) },
            data: { "cluster.json": JSON.stringify(pitrDrillCluster({ settings: s, image: this.image, namespace: DATABASE_NAMESPACE, labels: labels(id) }), null, 2) },
        }, opts);
        const kubectl = (step: string, args: string[]): k8s.types.input.core.v1.Container => ({
            name: step,
            image: kubectlImage,
            // Its discovery cache on the writable /tmp: the root filesystem is read-only.
            args: [...args, "--namespace", DATABASE_NAMESPACE, "--cache-dir=/tmp/kube-cache"],
            env: [
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
            ],
            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
            securityContext: RESTRICTED_CONTAINER,
            volumeMounts: [{ name: "drill-cluster", mountPath: "/drill", readOnly: true }, { name: "tmp", mountPath: "/tmp" }],
        });
        // The check runs our script in the PostgreSQL image, against the scratch Cluster only.
        const checkPod = this.scriptPod("pg-pitr-drill-check.sh", [
            { name: "PGHOST", value: `${PITR_DRILL_CLUSTER}-rw.${DATABASE_NAMESPACE}.svc.cluster.local` },
            { name: "PGPORT", value: "5432" },
            { name: "PGUSER", value: "postgres" },
            { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: `${PITR_DRILL_CLUSTER}-superuser`, key: "password" } } },
            { name: "DRILL_DATABASES", value: databases.join(" ") },
            ...(s.restoreDrill.checkQuery ? [{ name: "DRILL_CHECK_QUERY", value: s.restoreDrill.checkQuery }] : []),
        ], [], "Never");
        const [check] = checkPod.containers as k8s.types.input.core.v1.Container[];
        const ownedByThisPod = JSON.stringify({ metadata: { ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "$(POD_NAME)", uid: "$(POD_UID)" }] } });
        databaseCronJob(`${name}-${id}`, {
            id,
            schedule: s.restoreDrill.schedule,
            deadlineSeconds: 6 * 3600,
            backoffLimit: 0,
            // An hour to read a failed run's logs; then the Job, its pod and the scratch Cluster go.
            ttlSecondsAfterFinished: 3600,
            pod: {
                ...checkPod,
                serviceAccountName: id,
                automountServiceAccountToken: true,
                securityContext: { runAsNonRoot: true, runAsUser: KUBECTL_UID, runAsGroup: KUBECTL_UID, fsGroup: KUBECTL_UID, seccompProfile: { type: "RuntimeDefault" } },
                initContainers: [
                    kubectl("remove-leftover", ["delete", cluster, "--ignore-not-found", "--wait", "--timeout=15m"]),
                    kubectl("create", ["create", "--filename", "/drill/cluster.json"]),
                    // `$(VAR)` in args is expanded by the kubelet from the container's env.
                    kubectl("own", ["patch", cluster, "--type=merge", `--patch=${ownedByThisPod}`]),
                    // Restoring the base backup and replaying the WAL: up to the Job's deadline.
                    kubectl("recovered", ["wait", cluster, "--for=condition=Ready", "--timeout=300m"]),
                    { ...check, securityContext: { ...RESTRICTED_CONTAINER, runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID } },
                ],
                containers: [kubectl("remove", ["delete", cluster, "--wait", "--timeout=15m"])],
                volumes: [...(checkPod.volumes as k8s.types.input.core.v1.Volume[]), { name: "drill-cluster", configMap: { name: id } }],
            },
        }, { ...opts, dependsOn: [...(opts.dependsOn as pulumi.Resource[]), account, role, binding, manifest] });
    }
}
