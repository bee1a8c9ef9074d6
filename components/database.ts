// The in-cluster database tier: PostgreSQL (StatefulSet on a retained,
// protected volume), PgBouncer in front of it, a role and database per app,
// daily backups to a retained volume (and optionally S3), and a weekly restore
// drill. Passwords are 32 hex characters from @pulumi/random, kept secret.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { denyMetadataPolicy, JOB_TIMEOUTS, REPLACE_UNREADY_ANNOTATION, RESTRICTED_CONTAINER } from "./app-render";
import type { ClusterDatabaseSettings } from "./database-config";
import { pgbouncerIni, pgbouncerUserlist, postgresSettings, postgresUrl } from "./database-render";
import { readScript } from "./k3s-render";
import { VERSIONS } from "./versions";

export const DATABASE_NAMESPACE = "database";
export const DATABASE_CLIENT_LABEL = "platform.io/database-client";
export const POSTGRES_HOST = `postgres.${DATABASE_NAMESPACE}.svc.cluster.local`;
export const PGBOUNCER_HOST = `pgbouncer.${DATABASE_NAMESPACE}.svc.cluster.local`;
export const PGBOUNCER_ADMIN = "pgbouncer_admin";
/** The official image's postgres user. */
const POSTGRES_UID = 999;
const PGBOUNCER_UID = 10001;
// Mounted together at /scripts: the others source pg-common.sh from their own directory.
const SCRIPTS = ["pg-common.sh", "pg-backup.sh", "pg-restore.sh", "pg-restore-drill.sh", "db-ensure-roles.sh"];

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
}

/** What an app needs: its two URLs (secrets) and what must be rolled out before it. */
export interface AppDatabase {
    /** Through PgBouncer, in seed 001's format: postgresql://app_<slug>:<pw>@<pgbouncer>:5432/<slug>. */
    readonly url: pulumi.Output<string>;
    /** Straight to PostgreSQL, for migrations (advisory locks need a session). */
    readonly directUrl: pulumi.Output<string>;
    /** The role is altered and PgBouncer runs the new userlist before the app's Secret changes. */
    readonly ready: pulumi.Resource[];
}

export function roleName(app: string): string {
    return `app_${app}`;
}

const labels = (component: string) => ({
    "app.kubernetes.io/name": component,
    "app.kubernetes.io/part-of": "platform",
    "app.kubernetes.io/managed-by": "pulumi",
});

function pgIsReady(periodSeconds: number, failureThreshold: number): k8s.types.input.core.v1.Probe {
    return { exec: { command: ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"] }, periodSeconds, timeoutSeconds: 5, failureThreshold };
}

/** libpq settings for the scripts, as the superuser. */
function superuserEnv(): k8s.types.input.core.v1.EnvVar[] {
    return [
        { name: "PGHOST", value: POSTGRES_HOST },
        { name: "PGPORT", value: "5432" },
        { name: "PGUSER", value: "postgres" },
        { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "postgres-superuser", key: "password" } } },
    ];
}

export class Database extends pulumi.ComponentResource {
    readonly connections: Record<string, AppDatabase> = {};

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:Database", name, {}, opts);
        const s = args.settings;
        const child = { parent: this, provider: args.provider };
        // The component's dependencies (the StorageClass and CSI driver) hold back everything below.
        const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
            metadata: { name: DATABASE_NAMESPACE, labels: { ...labels("database"), "pod-security.kubernetes.io/enforce": "restricted" } },
        }, { ...child, dependsOn: opts?.dependsOn });
        const inNs = { ...child, dependsOn: [ns] };

        // 16 random bytes = 32 hex characters, as seed 001. Bumping a version replaces the password.
        const password = (id: string, version: number) =>
            new random.RandomBytes(`${name}-${id}-password`, { length: 16, keepers: { version: String(version) } }, { parent: this }).hex;
        const superuserPassword = password("superuser", 1);
        const adminPassword = password("pgbouncer-admin", 1);
        const appPasswords = args.apps.map((a) => ({ app: a, password: password(`app-${a.name}`, a.passwordVersion) }));

        new k8s.core.v1.Secret(`${name}-superuser`, {
            metadata: { name: "postgres-superuser", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            stringData: { password: superuserPassword },
        }, inNs);
        const roles = new k8s.core.v1.Secret(`${name}-roles`, {
            metadata: { name: "db-roles", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            stringData: pulumi.all(appPasswords.map((p) => p.password)).apply((pws) =>
                Object.fromEntries(appPasswords.map((p, i) => [roleName(p.app.name), pws[i]]))),
        }, inNs);
        const scripts = new k8s.core.v1.ConfigMap(`${name}-scripts`, {
            metadata: { name: "db-scripts", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            data: Object.fromEntries(SCRIPTS.map((f) => [f, readScript(f)])),
        }, inNs);

        const postgres = this.postgres(name, s, args.storageClass, inNs);
        const postgresService = new k8s.core.v1.Service(`${name}-postgres-svc`, {
            metadata: { name: "postgres", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            // Headless: the StatefulSet's stable name; clients reach the pod directly.
            spec: { clusterIP: "None", selector: labels("postgres"), ports: [{ name: "postgres", port: 5432, targetPort: 5432 }] },
        }, inNs);

        // Creates each app's role and database and sets its password: before PgBouncer and the apps change.
        const rolesHash = pulumi.all(appPasswords.map((p) => p.password)).apply((pws) =>
            createHash("sha256").update(JSON.stringify(pws)).digest("hex").slice(0, 10));
        const rolesJob = new k8s.batch.v1.Job(`${name}-ensure-roles`, {
            metadata: {
                name: pulumi.interpolate`db-ensure-roles-${pulumi.unsecret(rolesHash)}`,
                namespace: DATABASE_NAMESPACE,
                labels: labels("db-ensure-roles"),
                annotations: { [REPLACE_UNREADY_ANNOTATION]: "true" },
            },
            spec: {
                backoffLimit: 6,
                activeDeadlineSeconds: 900,
                template: {
                    metadata: { labels: labels("db-ensure-roles") },
                    spec: this.scriptPod("db-ensure-roles.sh", [{ name: "ROLES_DIR", value: "/roles" }], [
                        { volume: { name: "roles", secret: { secretName: "db-roles", defaultMode: 0o400 } }, mount: { name: "roles", mountPath: "/roles", readOnly: true } },
                    ], "OnFailure"),
                },
            },
        }, { ...inNs, dependsOn: [ns, postgres, postgresService, roles, scripts], customTimeouts: JOB_TIMEOUTS });

        const pgbouncer = this.pgbouncer(name, s, adminPassword, appPasswords, inNs, [ns, rolesJob]);

        const backups = new k8s.core.v1.PersistentVolumeClaim(`${name}-backups`, {
            metadata: { name: "postgres-backups", namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
            spec: {
                accessModes: ["ReadWriteOnce"],
                ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
                resources: { requests: { storage: s.backup.storage } },
            },
        }, { ...inNs, protect: true, retainOnDelete: true });
        this.backupJobs(name, s, { ...inNs, dependsOn: [ns, backups, scripts, postgres] });

        new k8s.networking.v1.NetworkPolicy(`${name}-allow-clients`, {
            metadata: { name: "allow-database-clients", namespace: DATABASE_NAMESPACE, labels: labels("database") },
            spec: {
                podSelector: {},
                policyTypes: ["Ingress"],
                // Only this namespace (PgBouncer, jobs) and the namespaces of apps with a database.
                ingress: [{
                    from: [{ podSelector: {} }, { namespaceSelector: { matchLabels: { [DATABASE_CLIENT_LABEL]: "true" } } }],
                    ports: [{ port: 5432, protocol: "TCP" }],
                }],
            },
        }, inNs);
        new k8s.networking.v1.NetworkPolicy(`${name}-deny-cloud-metadata`, denyMetadataPolicy(DATABASE_NAMESPACE, labels("database")), inNs);

        for (const { app, password: pw } of appPasswords) {
            const role = roleName(app.name);
            this.connections[app.name] = {
                url: pulumi.secret(pw.apply((p) => postgresUrl({ user: role, password: p, host: PGBOUNCER_HOST, port: 5432, database: app.name, params: { sslmode: "disable" } }))),
                directUrl: pulumi.secret(pw.apply((p) => postgresUrl({ user: role, password: p, host: POSTGRES_HOST, port: 5432, database: app.name, params: { sslmode: "disable" } }))),
                ready: [rolesJob, pgbouncer],
            };
        }
        this.registerOutputs({ host: PGBOUNCER_HOST, databases: args.apps.map((a) => a.name) });
    }

    private postgres(name: string, s: ClusterDatabaseSettings, storageClass: string | undefined, opts: pulumi.CustomResourceOptions): k8s.apps.v1.StatefulSet {
        const settings = postgresSettings(s.memory, s.maxConnections);
        return new k8s.apps.v1.StatefulSet(`${name}-postgres`, {
            metadata: { name: "postgres", namespace: DATABASE_NAMESPACE, labels: labels("postgres") },
            spec: {
                serviceName: "postgres",
                replicas: 1,
                selector: { matchLabels: labels("postgres") },
                template: {
                    metadata: { labels: labels("postgres") },
                    spec: {
                        automountServiceAccountToken: false,
                        enableServiceLinks: false,
                        // Room for a checkpoint and a clean shutdown of a busy database.
                        terminationGracePeriodSeconds: 120,
                        securityContext: {
                            runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID, fsGroup: POSTGRES_UID,
                            runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" },
                        },
                        containers: [{
                            name: "postgres",
                            image: VERSIONS.postgres,
                            args: Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
                            env: [
                                { name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: "postgres-superuser", key: "password" } } },
                                // A subdirectory: the volume's root holds lost+found, which initdb refuses.
                                { name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" },
                                { name: "POSTGRES_INITDB_ARGS", value: "--auth-host=scram-sha-256" },
                            ],
                            ports: [{ name: "postgres", containerPort: 5432 }],
                            // Guaranteed QoS: requests equal limits.
                            resources: { requests: { cpu: s.cpu, memory: s.memory }, limits: { cpu: s.cpu, memory: s.memory } },
                            // Crash recovery after an unclean stop can take minutes: allow 10 before liveness applies.
                            startupProbe: pgIsReady(10, 60),
                            readinessProbe: pgIsReady(10, 3),
                            livenessProbe: pgIsReady(20, 6),
                            securityContext: RESTRICTED_CONTAINER,
                            volumeMounts: [
                                { name: "data", mountPath: "/var/lib/postgresql/data" },
                                { name: "run", mountPath: "/var/run/postgresql" },
                                { name: "tmp", mountPath: "/tmp" },
                            ],
                        }],
                        volumes: [{ name: "run", emptyDir: {} }, { name: "tmp", emptyDir: {} }],
                    },
                },
                volumeClaimTemplates: [{
                    metadata: { name: "data", labels: labels("postgres") },
                    spec: {
                        accessModes: ["ReadWriteOnce"],
                        ...(storageClass ? { storageClassName: storageClass } : {}),
                        resources: { requests: { storage: s.storage } },
                    },
                }],
                // Volumes stay when the StatefulSet is deleted or scaled down.
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
            },
        }, { ...opts, protect: true, retainOnDelete: true });
    }

    private pgbouncer(name: string, s: ClusterDatabaseSettings, adminPassword: pulumi.Output<string>,
        appPasswords: { app: DatabaseApp; password: pulumi.Output<string> }[], opts: pulumi.CustomResourceOptions,
        after: pulumi.Resource[]): k8s.apps.v1.Deployment {
        const ini = pgbouncerIni({
            listenAddr: "0.0.0.0",
            listenPort: 5432,
            unixSocketDir: "",
            authFile: "/etc/pgbouncer/auth/userlist.txt",
            databases: appPasswords.map(({ app }) => ({ name: app.name, host: POSTGRES_HOST, port: 5432, dbname: app.name })),
            poolSize: s.pgbouncer.poolSize,
            reservePoolSize: s.pgbouncer.reservePool,
            maxClientConn: s.pgbouncer.maxClientConn,
            adminUser: PGBOUNCER_ADMIN,
            preparedStatements: true,
        });
        const userlist = pulumi.all([adminPassword, ...appPasswords.map((p) => p.password)]).apply(([admin, ...pws]) =>
            pgbouncerUserlist([{ user: PGBOUNCER_ADMIN, password: admin }, ...appPasswords.map((p, i) => ({ user: roleName(p.app.name), password: pws[i] }))]));
        const config = new k8s.core.v1.ConfigMap(`${name}-pgbouncer-config`, {
            metadata: { name: "pgbouncer-config", namespace: DATABASE_NAMESPACE, labels: labels("pgbouncer") },
            data: { "pgbouncer.ini": ini },
        }, opts);
        const auth = new k8s.core.v1.Secret(`${name}-pgbouncer-auth`, {
            metadata: { name: "pgbouncer-auth", namespace: DATABASE_NAMESPACE, labels: labels("pgbouncer") },
            stringData: { "userlist.txt": userlist },
        }, opts);
        // New config or passwords roll PgBouncer (the digest of secrets reveals nothing usable).
        const checksum = pulumi.unsecret(userlist.apply((u) => createHash("sha256").update(ini).update(u).digest("hex")));
        const selector = labels("pgbouncer");
        const deployment = new k8s.apps.v1.Deployment(`${name}-pgbouncer`, {
            metadata: { name: "pgbouncer", namespace: DATABASE_NAMESPACE, labels: selector },
            spec: {
                replicas: s.pgbouncer.replicas,
                selector: { matchLabels: selector },
                strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
                template: {
                    metadata: { labels: selector, annotations: { "platform.io/config-checksum": checksum } },
                    spec: {
                        automountServiceAccountToken: false,
                        enableServiceLinks: false,
                        terminationGracePeriodSeconds: 60,
                        securityContext: {
                            runAsUser: PGBOUNCER_UID, runAsGroup: PGBOUNCER_UID, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" },
                        },
                        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } }],
                        containers: [{
                            name: "pgbouncer",
                            image: VERSIONS.pgbouncer,
                            command: ["pgbouncer", "/etc/pgbouncer/config/pgbouncer.ini"],
                            ports: [{ name: "pgbouncer", containerPort: 5432 }],
                            readinessProbe: { tcpSocket: { port: 5432 }, periodSeconds: 5, timeoutSeconds: 3 },
                            livenessProbe: { tcpSocket: { port: 5432 }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
                            // SIGINT is PgBouncer's safe shutdown: no new clients, running transactions finish.
                            // Sent well before the grace period's SIGTERM/SIGKILL.
                            lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", "kill -INT 1; sleep 45"] } } },
                            resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
                            securityContext: RESTRICTED_CONTAINER,
                            volumeMounts: [
                                { name: "config", mountPath: "/etc/pgbouncer/config", readOnly: true },
                                { name: "auth", mountPath: "/etc/pgbouncer/auth", readOnly: true },
                            ],
                        }],
                        volumes: [
                            { name: "config", configMap: { name: "pgbouncer-config" } },
                            { name: "auth", secret: { secretName: "pgbouncer-auth", defaultMode: 0o440 } },
                        ],
                    },
                },
            },
        }, { ...opts, dependsOn: [...after, config, auth] });
        new k8s.core.v1.Service(`${name}-pgbouncer-svc`, {
            metadata: { name: "pgbouncer", namespace: DATABASE_NAMESPACE, labels: selector },
            spec: { selector, ports: [{ name: "pgbouncer", port: 5432, targetPort: 5432 }] },
        }, opts);
        new k8s.policy.v1.PodDisruptionBudget(`${name}-pgbouncer-pdb`, {
            metadata: { name: "pgbouncer", namespace: DATABASE_NAMESPACE, labels: selector },
            spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
        }, opts);
        return deployment;
    }

    /** A pod that runs one of our scripts in the postgres image, as the postgres user, with the superuser's libpq env. */
    private scriptPod(script: string, env: k8s.types.input.core.v1.EnvVar[],
        extra: { volume: k8s.types.input.core.v1.Volume; mount: k8s.types.input.core.v1.VolumeMount }[],
        restartPolicy: "Never" | "OnFailure"): k8s.types.input.core.v1.PodSpec {
        return {
            restartPolicy,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID, fsGroup: POSTGRES_UID, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
            containers: [{
                name: script.replace(/\.sh$/, ""),
                image: VERSIONS.postgres,
                command: ["bash", `/scripts/${script}`],
                env: [...superuserEnv(), ...env],
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
            { name: "BACKUP_DIR", value: "/backups" },
            { name: "RETENTION_DAYS", value: String(s.backup.retentionDays) },
        ], [backupsVolume], "Never");
        const s3 = s.backup.s3;
        if (s3) {
            new k8s.core.v1.Secret(`${name}-backup-s3`, {
                metadata: { name: "backup-s3", namespace: DATABASE_NAMESPACE, labels: labels("postgres-backup") },
                stringData: { accessKey: s3.accessKey, secretKey: pulumi.secret(s3.secretKey) },
            }, opts);
        }
        // With S3: dump first (init container), then copy off-site. `copy` never deletes remotely:
        // an emptied local volume must not wipe the off-site copies (S3 lifecycle rules expire them).
        const spec: k8s.types.input.core.v1.PodSpec = s3 ? {
            ...backupPod,
            initContainers: backupPod.containers,
            containers: [{
                name: "upload",
                image: VERSIONS.rclone,
                args: ["copy", "/backups", `offsite:${s3.bucket}/postgres`, "--exclude", ".*.partial/**", "--immutable"],
                env: [
                    { name: "RCLONE_CONFIG_OFFSITE_TYPE", value: "s3" },
                    { name: "RCLONE_CONFIG_OFFSITE_PROVIDER", value: "Other" },
                    { name: "RCLONE_CONFIG_OFFSITE_ENDPOINT", value: `https://${s3.endpoint}` },
                    { name: "RCLONE_CONFIG_OFFSITE_REGION", value: s3.region },
                    { name: "RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "backup-s3", key: "accessKey" } } },
                    { name: "RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY", valueFrom: { secretKeyRef: { name: "backup-s3", key: "secretKey" } } },
                ],
                resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "512Mi" } },
                securityContext: RESTRICTED_CONTAINER,
                volumeMounts: [{ name: "backups", mountPath: "/backups", readOnly: true }, { name: "tmp", mountPath: "/tmp" }],
            }],
        } : backupPod;

        const cronJob = (id: string, schedule: string, pod: k8s.types.input.core.v1.PodSpec, deadlineSeconds: number, suspend = false) =>
            new k8s.batch.v1.CronJob(`${name}-${id}`, {
                metadata: { name: id, namespace: DATABASE_NAMESPACE, labels: labels(id) },
                spec: {
                    schedule,
                    suspend,
                    timeZone: "Etc/UTC",
                    concurrencyPolicy: "Forbid",
                    startingDeadlineSeconds: 3600,
                    successfulJobsHistoryLimit: 3,
                    failedJobsHistoryLimit: 5,
                    jobTemplate: {
                        metadata: { labels: labels(id) },
                        spec: {
                            backoffLimit: 1,
                            activeDeadlineSeconds: deadlineSeconds,
                            template: { metadata: { labels: labels(id) }, spec: pod },
                        },
                    },
                },
            }, opts);
        cronJob("postgres-backup", s.backup.schedule, spec, 6 * 3600);
        // Never scheduled: a template for `kubectl create job --from=cronjob/postgres-restore` (docs/database.md).
        const restorePod = this.scriptPod("pg-restore.sh", [
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
        cronJob("postgres-restore-drill", s.restoreDrill.schedule, this.scriptPod("pg-restore-drill.sh", [
            { name: "BACKUP_DIR", value: "/backups" },
            ...(s.restoreDrill.checkQuery ? [{ name: "DRILL_CHECK_QUERY", value: s.restoreDrill.checkQuery }] : []),
        ], [{ ...backupsVolume, mount: { ...backupsVolume.mount, readOnly: true } }], "Never"), 6 * 3600);
    }
}
