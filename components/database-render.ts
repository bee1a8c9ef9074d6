// Pure renderers for the database tier: pgbouncer.ini, its userlist, the
// PostgreSQL settings derived from the pod's memory, connection URLs, and the
// connection budget check. Tests run real PgBouncer and PostgreSQL on exactly
// this text.

export interface PgbouncerDatabase {
    /** Name clients connect to. */
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly dbname: string;
}

export interface PgbouncerSettings {
    readonly listenAddr: string;
    readonly listenPort: number;
    readonly authFile: string;
    readonly databases: readonly PgbouncerDatabase[];
    /** Server connections per (database, user) pair. */
    readonly poolSize: number;
    /** Extra server connections when a client waited `reservePoolTimeout` seconds. */
    readonly reservePoolSize: number;
    readonly maxClientConn: number;
    /** May run RELOAD, SHOW, PAUSE on the admin console (database "pgbouncer"). */
    readonly adminUser: string;
    /**
     * PgBouncer 1.21+ tracks prepared statements in transaction mode. Older
     * versions (Debian's 1.18) reject the setting, so tests can turn it off.
     */
    readonly preparedStatements: boolean;
    /** Directory for the Unix socket; empty disables it. */
    readonly unixSocketDir: string;
}

function iniValue(v: string | number): string {
    return String(v);
}

/** pgbouncer.ini: transaction pooling with SCRAM authentication (seed 001's pool sizes by default). */
export function pgbouncerIni(s: PgbouncerSettings): string {
    const databases = s.databases.map((d) => `${d.name} = host=${d.host} port=${d.port} dbname=${d.dbname}`);
    const settings: [string, string | number][] = [
        ["listen_addr", s.listenAddr],
        ["listen_port", s.listenPort],
        ["unix_socket_dir", s.unixSocketDir],
        ["auth_type", "scram-sha-256"],
        ["auth_file", s.authFile],
        ["admin_users", s.adminUser],
        ["stats_users", s.adminUser],
        ["pool_mode", "transaction"],
        ["default_pool_size", s.poolSize],
        ["min_pool_size", 0],
        ["reserve_pool_size", s.reservePoolSize],
        ["reserve_pool_timeout", 3],
        ["max_client_conn", s.maxClientConn],
        // Drivers send these at startup; PgBouncer would otherwise refuse the connection.
        ["ignore_startup_parameters", "extra_float_digits,options"],
        ["server_reset_query", "DISCARD ALL"],
        ["server_idle_timeout", 300],
        ["server_lifetime", 3600],
        ["query_wait_timeout", 60],
        ["log_connections", 0],
        ["log_disconnections", 0],
        ["log_pooler_errors", 1],
        ...(s.preparedStatements ? [["max_prepared_statements", 200] as [string, number]] : []),
    ];
    return [
        "; Rendered by components/database-render.ts",
        "[databases]",
        ...databases,
        "",
        "[pgbouncer]",
        ...settings.map(([k, v]) => `${k} = ${iniValue(v)}`),
        "",
    ].join("\n");
}

export interface Credential {
    readonly user: string;
    readonly password: string;
}

/** The auth_file: one `"user" "password"` line each; PgBouncer runs SCRAM with clients and servers from it. */
export function pgbouncerUserlist(users: readonly Credential[]): string {
    const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
    return users.map((u) => `${quote(u.user)} ${quote(u.password)}`).join("\n") + "\n";
}

/** Kubernetes memory quantity ("1Gi", "512Mi") in MiB. */
export function memoryMiB(quantity: string): number {
    const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
    if (!m) throw new Error(`unsupported memory quantity '${quantity}' (use Mi or Gi)`);
    return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

/**
 * postgresql.conf settings sized to the pod: shared_buffers a quarter of its
 * memory, effective_cache_size three quarters (the usual starting points).
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
        log_connections: "off",
    };
}

/** postgresql://user:password@host:port/db with user and password URL-encoded. */
export function postgresUrl(c: { user: string; password: string; host: string; port: number; database: string; params?: Record<string, string> }): string {
    const query = c.params && Object.keys(c.params).length > 0 ? `?${new URLSearchParams(c.params).toString()}` : "";
    return `postgresql://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${encodeURIComponent(c.database)}${query}`;
}

export interface BudgetApp {
    readonly name: string;
    /** Most pods the app can run (replicas, or the autoscaler's maximum, plus one surging during a rollout). */
    readonly maxPods: number;
    /** Connections each pod opens (its DB_MAX_CONNECTIONS). */
    readonly perPod: number;
}

export interface BudgetLimits {
    readonly maxClientConn: number;
    readonly poolSize: number;
    readonly reservePoolSize: number;
    readonly pgbouncerReplicas: number;
    readonly postgresMaxConnections: number;
    /** Connections kept for superusers, backups, migrations and the restore drill. */
    readonly reservedConnections: number;
}

export interface Budget {
    readonly clients: number;
    readonly serverConnections: number;
    /** Set when the apps can open more connections than PgBouncer accepts. */
    readonly clientProblem?: string;
    /** Set when PgBouncer can open more server connections than PostgreSQL allows. */
    readonly serverProblem?: string;
}

/**
 * Seed 004's worst case, checked before deploying: every pod of every app
 * opens its whole pool at once through PgBouncer, and every PgBouncer opens
 * its whole pool (plus reserve) for every database. Problems carry the numbers.
 */
export function connectionBudget(apps: readonly BudgetApp[], l: BudgetLimits): Budget {
    const clients = apps.reduce((sum, a) => sum + a.maxPods * a.perPod, 0);
    const serverConnections = apps.length * (l.poolSize + l.reservePoolSize) * l.pgbouncerReplicas;
    const needed = serverConnections + l.reservedConnections;
    const parts = apps.map((a) => `${a.name} ${a.maxPods} pods x ${a.perPod}`).join(" + ");
    return {
        clients,
        serverConnections,
        clientProblem: clients > l.maxClientConn
            ? `apps can open ${clients} client connections (${parts}) but PgBouncer accepts ${l.maxClientConn} (max_client_conn): lower DB_MAX_CONNECTIONS or replicas, or raise pgbouncerMaxClientConn`
            : undefined,
        serverProblem: needed > l.postgresMaxConnections
            ? `PgBouncer can open ${serverConnections} server connections (${apps.length} database(s) x (pool ${l.poolSize} + reserve ${l.reservePoolSize}) x ${l.pgbouncerReplicas} replicas) plus ${l.reservedConnections} reserved, ${needed} in all, but PostgreSQL allows ${l.postgresMaxConnections} (max_connections): raise postgresMaxConnections or lower pgbouncerPoolSize`
            : undefined,
    };
}
