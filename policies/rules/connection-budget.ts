// The database connection budget (seed 004's outage: more client connections
// than PgBouncer accepts, or more pooled server connections than PostgreSQL
// allows). One function, used by the config check before any resource and by
// the connection-budget policy on what was rendered.

/** Connections PostgreSQL keeps for superusers, backups, migrations and the restore drill. */
export const RESERVED_CONNECTIONS = 10;

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
    /** Login roles per app database, each with a pool of its own (two while a password rotation rolls out). */
    readonly loginRolesPerDatabase: number;
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
    // PgBouncer pools per (database, user): both login roles of an app hold a pool while a rotation rolls out.
    const serverConnections = apps.length * l.loginRolesPerDatabase * (l.poolSize + l.reservePoolSize) * l.pgbouncerReplicas;
    const needed = serverConnections + l.reservedConnections;
    const parts = apps.map((a) => `${a.name} ${a.maxPods} pods x ${a.perPod}`).join(" + ");
    return {
        clients,
        serverConnections,
        clientProblem: clients > l.maxClientConn
            ? `apps can open ${clients} client connections (${parts}) but PgBouncer accepts ${l.maxClientConn} (max_client_conn): lower DB_MAX_CONNECTIONS or replicas, or raise pgbouncerMaxClientConn`
            : undefined,
        serverProblem: needed > l.postgresMaxConnections
            ? `PgBouncer can open ${serverConnections} server connections (${apps.length} database(s) x ${l.loginRolesPerDatabase} login roles x (pool ${l.poolSize} + reserve ${l.reservePoolSize}) x ${l.pgbouncerReplicas} replicas) plus ${l.reservedConnections} reserved, ${needed} in all, but PostgreSQL allows ${l.postgresMaxConnections} (max_connections): raise postgresMaxConnections or lower pgbouncerPoolSize`
            : undefined,
    };
}
