// Pure builders of the database tier on CloudNativePG: the Cluster, Pooler and
// Database objects, the login roles that alternate on password rotation, the
// PostgreSQL parameters derived from the pod's memory, connection URLs, and the
// connection budget check. Tested directly and against the CNPG CRD schemas.
import type { ClusterDatabaseSettings } from "./database-config";

/** Kubernetes memory quantity ("1Gi", "512Mi") in MiB. */
export function memoryMiB(quantity: string): number {
    const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
    if (!m) throw new Error(`unsupported memory quantity '${quantity}' (use Mi or Gi)`);
    return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

/**
 * postgresql.conf settings sized to the pod: shared_buffers a quarter of its
 * memory, effective_cache_size three quarters (the usual starting points).
 * None is one CloudNativePG fixes or forbids (pkg/postgres/configuration.go).
 */
export function postgresSettings(memory: string, maxConnections: number): Record<string, string> {
    const mib = memoryMiB(memory);
    return {
        max_connections: String(maxConnections),
        shared_buffers: `${Math.max(32, Math.floor(mib / 4))}MB`,
        effective_cache_size: `${Math.max(64, Math.floor((mib * 3) / 4))}MB`,
        maintenance_work_mem: `${Math.max(16, Math.min(1024, Math.floor(mib / 16)))}MB`,
        work_mem: `${Math.max(1, Math.floor(mib / (4 * maxConnections)))}MB`,
        password_encryption: "scram-sha-256",
        log_min_duration_statement: "1000",
    };
}

/** postgresql://user:password@host:port/db with user and password URL-encoded. */
export function postgresUrl(c: { user: string; password: string; host: string; port: number; database: string; params?: Record<string, string> }): string {
    const query = c.params && Object.keys(c.params).length > 0 ? `?${new URLSearchParams(c.params).toString()}` : "";
    return `postgresql://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${encodeURIComponent(c.database)}${query}`;
}

// ---------------------------------------------------------------- roles and rotation

/**
 * Each app has an owner role `app_<slug>` (no login; owns its database and,
 * through the login roles' `SET role`, every object they create) and two login
 * roles that alternate: a rotation gives the idle one a new password and moves
 * the app to it, while pods still running keep the other one, which stays valid
 * until the next rotation. No login fails at any point of the rollout.
 */
export const LOGIN_SLOTS = [1, 2] as const;
export type LoginSlot = (typeof LOGIN_SLOTS)[number];

export function ownerRole(app: string): string {
    return `app_${app.replace(/-/g, "_")}`;
}

export function loginRole(app: string, slot: LoginSlot): string {
    return `${ownerRole(app)}_${slot}`;
}

/** The login role a password version uses: 1, 3, 5... slot 1; 2, 4... slot 2. */
export function activeSlot(version: number): LoginSlot {
    return version % 2 === 1 ? 1 : 2;
}

/**
 * The version whose password each slot holds at `version`: the active slot's
 * is `version`, the other's the one before (0: the initial, never-used one).
 * Bumping the version changes exactly one password: the idle slot's.
 */
export function slotGenerations(version: number): Record<LoginSlot, number> {
    const active = activeSlot(version);
    const other: LoginSlot = active === 1 ? 2 : 1;
    return { [active]: version, [other]: version - 1 } as Record<LoginSlot, number>;
}

// ---------------------------------------------------------------- CloudNativePG objects

export const CNPG_CLUSTER = "postgres";
export const CNPG_POOLER = "pgbouncer";

export interface CnpgClusterSpec {
    readonly settings: ClusterDatabaseSettings;
    readonly image: string;
    readonly storageClass?: string;
    /** The ObjectStore WAL and base backups go to (point-in-time recovery); absent: none. */
    readonly objectStore?: string;
    /** Start as a copy of another database (CloudNativePG's import bootstrap); only read at creation. */
    readonly importFrom?: { readonly app: string; readonly source: ImportSource };
    /** Each app's owner role and its two login roles, with the Secrets holding their passwords. */
    readonly apps: readonly string[];
}

/** The name of the basic-auth Secret CloudNativePG reads a login role's password from. */
export function loginSecretName(app: string, slot: LoginSlot): string {
    return `${loginRole(app, slot).replace(/_/g, "-")}-password`;
}

/** spec of the CloudNativePG Cluster (postgresql.cnpg.io/v1, api/v1/cluster_types.go at v1.30.0). */
export function cnpgClusterSpec(c: CnpgClusterSpec): Record<string, unknown> {
    const s = c.settings;
    const ha = s.instances > 1;
    return {
        instances: s.instances,
        imageName: c.image,
        // Our dump and drill Jobs connect as postgres (Secret <cluster>-superuser).
        enableSuperuserAccess: true,
        // A single instance would block every node drain with its PDB.
        enablePDB: ha,
        postgresql: { parameters: postgresSettings(s.memory, s.maxConnections) },
        storage: {
            size: s.storage,
            ...(c.storageClass ? { storageClass: c.storageClass } : {}),
            resizeInUseVolumes: true,
        },
        // Guaranteed QoS: requests equal limits.
        resources: { requests: { cpu: s.cpu, memory: s.memory }, limits: { cpu: s.cpu, memory: s.memory } },
        // One instance per node: losing a node loses one copy, and a replica is promoted.
        affinity: { enablePodAntiAffinity: true, podAntiAffinityType: "required", topologyKey: "kubernetes.io/hostname" },
        // Every WAL segment goes to the object store, at the latest after archive_timeout
        // (CloudNativePG's default 5min, pkg/postgres/configuration.go): the RPO.
        ...(c.objectStore ? { plugins: [{ name: BARMAN_PLUGIN, isWALArchiver: true, parameters: { barmanObjectName: c.objectStore } }] } : {}),
        ...(c.importFrom ? {
            bootstrap: {
                initdb: {
                    database: c.importFrom.app,
                    owner: ownerRole(c.importFrom.app),
                    import: { type: "microservice", databases: [c.importFrom.source.database], source: { externalCluster: IMPORT_SOURCE } },
                },
            },
            externalClusters: [{
                name: IMPORT_SOURCE,
                connectionParameters: c.importFrom.source.parameters,
                password: { name: IMPORT_SECRET, key: "password" },
            }],
        } : {}),
        managed: {
            roles: c.apps.flatMap((app) => [
                { name: ownerRole(app), ensure: "present", login: false, inherit: true },
                ...LOGIN_SLOTS.map((slot) => ({
                    name: loginRole(app, slot),
                    ensure: "present",
                    login: true,
                    inherit: true,
                    inRoles: [ownerRole(app)],
                    passwordSecret: { name: loginSecretName(app, slot) },
                })),
            ]),
        },
    };
}

/** spec of the Pooler: PgBouncer in transaction mode in front of the primary (api/v1/pooler_types.go at v1.30.0). */
export function cnpgPoolerSpec(s: ClusterDatabaseSettings, image: string): Record<string, unknown> {
    return {
        cluster: { name: CNPG_CLUSTER },
        instances: s.pgbouncer.replicas,
        type: "rw",
        pgbouncer: {
            poolMode: "transaction",
            image,
            // All on the operator's allow-list (internal/webhook/v1/pooler_webhook.go).
            parameters: {
                default_pool_size: String(s.pgbouncer.poolSize),
                reserve_pool_size: String(s.pgbouncer.reservePool),
                reserve_pool_timeout: "3",
                max_client_conn: String(s.pgbouncer.maxClientConn),
                max_prepared_statements: "200",
                server_idle_timeout: "300",
                query_wait_timeout: "60",
            },
        },
        template: {
            metadata: { labels: { "app.kubernetes.io/name": CNPG_POOLER } },
            spec: {
                containers: [],
                topologySpreadConstraints: [{
                    maxSkew: 1,
                    topologyKey: "kubernetes.io/hostname",
                    whenUnsatisfiable: "ScheduleAnyway",
                    labelSelector: { matchLabels: { "cnpg.io/poolerName": CNPG_POOLER } },
                }],
            },
        },
    };
}

/** spec of an app's Database: owned by its owner role, kept when the object is deleted. */
export function cnpgDatabaseSpec(app: string): Record<string, unknown> {
    return { name: app, owner: ownerRole(app), cluster: { name: CNPG_CLUSTER }, ensure: "present", databaseReclaimPolicy: "retain" };
}

// ---------------------------------------------------------------- point-in-time recovery

/** plugin-barman-cloud's name (internal/cnpgi/metadata/constants.go). */
export const BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io";
export const OBJECT_STORE = "postgres-backups";

export interface ObjectStoreS3 {
    readonly endpoint: string;
    readonly bucket: string;
    /** A Secret with keys accessKey and secretKey. */
    readonly credentialsSecret: string;
}

/** spec of the plugin's ObjectStore (barmancloud.cnpg.io/v1, api/v1/objectstore_types.go at v0.13.0). */
export function objectStoreSpec(s3: ObjectStoreS3, retentionDays: number): Record<string, unknown> {
    return {
        configuration: {
            destinationPath: `s3://${s3.bucket}/cnpg`,
            endpointURL: `https://${s3.endpoint}`,
            s3Credentials: {
                accessKeyId: { name: s3.credentialsSecret, key: "accessKey" },
                secretAccessKey: { name: s3.credentialsSecret, key: "secretKey" },
            },
            wal: { compression: "zstd", maxParallel: 2 },
            data: { compression: "snappy", jobs: 2 },
        },
        retentionPolicy: `${retentionDays}d`,
        instanceSidecarConfiguration: {
            // S3-compatible stores (Hetzner's among them) reject boto3's newer default checksums
            // (plugin-barman-cloud issue #393).
            env: [
                { name: "AWS_REQUEST_CHECKSUM_CALCULATION", value: "when_required" },
                { name: "AWS_RESPONSE_CHECKSUM_VALIDATION", value: "when_required" },
            ],
        },
    };
}

/**
 * CloudNativePG's schedules have a seconds field first (api/v1/scheduledbackup_types.go):
 * the base backup runs at second 0 of our five-field cron.
 */
export function withSeconds(cron: string): string {
    return `0 ${cron}`;
}

/** spec of the daily base backup through the plugin. */
export function scheduledBackupSpec(cron: string): Record<string, unknown> {
    return {
        schedule: withSeconds(cron),
        cluster: { name: CNPG_CLUSTER },
        method: "plugin",
        pluginConfiguration: { name: BARMAN_PLUGIN },
        backupOwnerReference: "self",
        immediate: true,
    };
}

// ---------------------------------------------------------------- object-store drill

/** The scratch Cluster the object-store drill recovers, checks and deletes. */
export const PITR_DRILL_CLUSTER = "pitr-drill";

/**
 * The scratch Cluster, whole: one instance recovered from the object store to
 * the end of the archived WAL (bootstrap.recovery through the plugin's
 * externalClusters entry, plugin-barman-cloud web/docs/usage.md at v0.13.0).
 * No `plugins`: it never archives, so it cannot write into production's
 * backups. Replaying WAL needs max_connections and the other hot-standby
 * settings at least the primary's, so it has production's parameters and
 * resources. Storage on the cluster's default class (Hetzner: `hcloud-volumes`,
 * which deletes the volume with its claim), and no PDB: nothing of it may stay.
 */
export function pitrDrillCluster(c: { settings: ClusterDatabaseSettings; image: string; namespace: string; labels: Record<string, string> }): Record<string, unknown> {
    const s = c.settings;
    return {
        apiVersion: "postgresql.cnpg.io/v1",
        kind: "Cluster",
        metadata: { name: PITR_DRILL_CLUSTER, namespace: c.namespace, labels: c.labels },
        spec: {
            instances: 1,
            imageName: c.image,
            // The drill's check logs in as postgres (Secret pitr-drill-superuser).
            enableSuperuserAccess: true,
            enablePDB: false,
            postgresql: { parameters: postgresSettings(s.memory, s.maxConnections) },
            storage: { size: s.storage },
            resources: { requests: { cpu: s.cpu, memory: s.memory }, limits: { cpu: s.cpu, memory: s.memory } },
            bootstrap: { recovery: { source: "origin" } },
            externalClusters: [{ name: "origin", plugin: { name: BARMAN_PLUGIN, parameters: { barmanObjectName: OBJECT_STORE, serverName: CNPG_CLUSTER } } }],
        },
    };
}

// ---------------------------------------------------------------- import at creation

export const IMPORT_SOURCE = "import-source";
/** The Secret holding the source database's password. */
export const IMPORT_SECRET = "database-import";

export interface ImportSource {
    /** libpq parameters of the source, without the password (not secret). */
    readonly parameters: Readonly<Record<string, string>>;
    /** The source database. */
    readonly database: string;
}

/** The source of an import from its URL: libpq parameters without the password, and the password. */
export function importSource(url: string): { source: ImportSource; password: string } {
    const u = new URL(url);
    const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
    const parameters: Record<string, string> = {
        host: u.hostname,
        port: u.port || "5432",
        user: decodeURIComponent(u.username),
        dbname: database,
    };
    for (const [k, v] of u.searchParams) parameters[k] = v;
    return { source: { parameters, database }, password: decodeURIComponent(u.password) };
}
