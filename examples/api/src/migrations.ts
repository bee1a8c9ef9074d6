// Schema migrations, defined in code and applied in order by `migrate`
// (a Kubernetes Job that runs before each release). Append new ones at the
// end; never edit one that has been applied: it will not run again.
import type { ClientBase } from "pg";
import type { Logger } from "./log";

export interface Migration {
    /** Unique and sortable: applied in this order, recorded in schema_migrations. */
    version: string;
    /** Runs in one transaction together with its schema_migrations row. */
    sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
    {
        version: "001_create_items",
        sql: `CREATE TABLE items (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )`,
    },
];

/**
 * Key of the session-level advisory lock that serialises migrators (two
 * release Jobs, or a retried one). Arbitrary but fixed; a random-looking
 * 64-bit value keeps clear of other applications' locks in the same database.
 */
export const MIGRATION_LOCK_KEY = "7305264128911837123";

/**
 * Applies the migrations not yet recorded, each in its own transaction, while
 * holding the advisory lock. `client` must be a direct session to PostgreSQL
 * (not through PgBouncer in transaction mode). Returns the versions applied.
 */
export async function migrate(client: ClientBase, log: Logger, migrations: readonly Migration[] = MIGRATIONS): Promise<string[]> {
    for (let i = 1; i < migrations.length; i++) {
        if (!(migrations[i - 1].version < migrations[i].version)) {
            throw new Error(`migrations out of order or duplicated: ${migrations[i - 1].version} then ${migrations[i].version}`);
        }
    }

    const waitStarted = performance.now();
    await client.query("SELECT pg_advisory_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
    log.info("migration lock acquired", { waited_ms: Math.round(performance.now() - waitStarted) });
    try {
        await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
            version text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )`);
        const recorded = new Set((await client.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version));

        // Normal after a rollback to an older release: the schema is ahead of the code.
        const known = new Set(migrations.map((m) => m.version));
        const unknown = [...recorded].filter((v) => !known.has(v)).sort();
        if (unknown.length > 0) log.warn("database has migrations this release does not know", { versions: unknown });

        const applied: string[] = [];
        for (const m of migrations) {
            if (recorded.has(m.version)) continue;
            const started = performance.now();
            await client.query("BEGIN");
            try {
                await client.query(m.sql);
                await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [m.version]);
                await client.query("COMMIT");
            } catch (err) {
                await client.query("ROLLBACK").catch(() => undefined);
                throw new Error(`migration ${m.version} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
            }
            applied.push(m.version);
            log.info("migration applied", { version: m.version, duration_ms: Math.round(performance.now() - started) });
        }
        return applied;
    } finally {
        // Also released when the session ends; unlocking here lets the next
        // migrator go on at once even if closing the connection is slow.
        await client.query("SELECT pg_advisory_unlock($1::bigint)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
}
