// A real PgBouncer from Debian for integration tests, configured the way
// CloudNativePG's Pooler runs it (cloudnative-pg v1.30.0 pkg/specs/pgbouncer):
// every database routed to the cluster's primary, app users authenticated
// with SCRAM verifiers looked up live through auth_query as
// cnpg_pooler_pgbouncer (no userlist of app passwords), transaction pooling
// and our Pooler parameters (database-render.ts cnpgPoolerSpec). Like
// PostgreSQL, PgBouncer refuses to run as root: then it runs as `postgres`.
//
// What Debian's PgBouncer 1.18 cannot do that the Pooler's 1.25 does:
// auth_dbname (1.20): auth_query runs in the target database, so
// preparePoolerAuth installs CloudNativePG's user_search function and grants
// CONNECT there too; max_prepared_statements (1.21) is left out; the auth
// user logs in with a password here, with a TLS client certificate there.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { freePort, type PgServer } from "./postgres";

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";
const RUN_AS = "postgres";
/** CloudNativePG's auth user and query (pkg/specs/pgbouncer/deployments.go, pkg/management/pgbouncer). */
export const POOLER_AUTH_USER = "cnpg_pooler_pgbouncer";
const AUTH_QUERY = "SELECT usename, passwd FROM public.user_search($1)";
/** Parameters PgBouncer 1.18 does not know. */
const NEWER_PARAMETERS = ["max_prepared_statements"];

export interface Credential {
    readonly user: string;
    readonly password: string;
}

export function pgbouncerVersion(): string | undefined {
    const r = spawnSync(PGBOUNCER_BIN, ["--version"], { encoding: "utf8" });
    return r.status === 0 ? /PgBouncer (\S+)/.exec(r.stdout)?.[1] : undefined;
}

function osUserId(flag: "-u" | "-g"): number {
    return Number(spawnSync("id", [flag, RUN_AS], { encoding: "utf8" }).stdout.trim());
}

/**
 * What CloudNativePG sets up for its pooler in `databases` (it does so in
 * `postgres` only, reached through auth_dbname): the auth role and the
 * SECURITY DEFINER function that reads SCRAM verifiers from pg_shadow.
 */
export async function preparePoolerAuth(pg: PgServer, authPassword: string, databases: readonly string[]): Promise<void> {
    const exists = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1", [POOLER_AUTH_USER]);
    if (exists[0].n === 0) await pg.query(`CREATE ROLE ${POOLER_AUTH_USER} LOGIN PASSWORD '${authPassword}'`);
    for (const db of databases) {
        await pg.query(`GRANT CONNECT ON DATABASE "${db}" TO ${POOLER_AUTH_USER}`);
        await pg.query(`CREATE OR REPLACE FUNCTION public.user_search(uname TEXT) RETURNS TABLE (usename name, passwd text)
            LANGUAGE sql SECURITY DEFINER AS 'SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename=$1;';
            REVOKE ALL ON FUNCTION public.user_search(text) FROM public;
            GRANT EXECUTE ON FUNCTION public.user_search(text) TO ${POOLER_AUTH_USER};`, [], db);
    }
}

export interface RunningPgbouncer {
    readonly port: number;
    readonly ini: string;
    /** postgres:// URL through PgBouncer. */
    url(database: string, user: string, password: string): string;
    /** A query on the admin console (`SHOW POOLS`, `SHOW CONFIG`). */
    admin(sql: string): Promise<Record<string, unknown>[]>;
    log(): string;
    stop(): Promise<void>;
}

export interface StartPgbouncerOptions {
    readonly postgres: { readonly host: string; readonly port: number };
    /** The Pooler's pgbouncer.parameters, as rendered. */
    readonly parameters: Readonly<Record<string, string>>;
    readonly authPassword: string;
    readonly admin: Credential;
}

function quote(s: string): string {
    return `"${s.replace(/"/g, '""')}"`;
}

export async function startPgbouncer(opts: StartPgbouncerOptions): Promise<RunningPgbouncer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgbouncer-"));
    const authFile = path.join(dir, "userlist.txt");
    const iniFile = path.join(dir, "pgbouncer.ini");
    const logFile = path.join(dir, "pgbouncer.log");
    const asRoot = process.getuid?.() === 0;
    const port = await freePort();
    const parameters = Object.entries(opts.parameters).filter(([k]) => !NEWER_PARAMETERS.includes(k));
    const ini = [
        "[databases]",
        `* = host=${opts.postgres.host} port=${opts.postgres.port} auth_user=${POOLER_AUTH_USER}`,
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        `logfile = ${logFile}`,
        "auth_type = scram-sha-256",
        `auth_file = ${authFile}`,
        `auth_query = ${AUTH_QUERY}`,
        `admin_users = ${opts.admin.user}`,
        `stats_users = ${opts.admin.user}`,
        "pool_mode = transaction",
        // The operator always appends these (pkg/specs/pgbouncer).
        "ignore_startup_parameters = extra_float_digits,options",
        ...parameters.map(([k, v]) => `${k} = ${v}`),
        "",
    ].join("\n");
    fs.writeFileSync(iniFile, ini);
    fs.writeFileSync(authFile, [[POOLER_AUTH_USER, opts.authPassword], [opts.admin.user, opts.admin.password]].map(([u, p]) => `${quote(u)} ${quote(p)}`).join("\n") + "\n", { mode: 0o600 });
    if (asRoot) spawnSync("chown", ["-R", RUN_AS, dir]);

    // Started directly as that user (not through runuser), so our signals reach PgBouncer itself.
    const ids = asRoot ? { uid: osUserId("-u"), gid: osUserId("-g") } : {};
    const child: ChildProcess = spawn(PGBOUNCER_BIN, [iniFile], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], ...ids });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // An interrupted run leaves neither a PgBouncer nor its temp dir behind.
    const killOnExit = () => {
        child.kill("SIGKILL");
        fs.rmSync(dir, { recursive: true, force: true });
    };
    process.once("exit", killOnExit);

    const readLog = () => output + (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
    const url = (database: string, user: string, password: string) =>
        `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    const admin = async (sql: string) => {
        const client = new Client({ connectionString: url("pgbouncer", opts.admin.user, opts.admin.password) });
        await client.connect();
        try {
            // No parameters: pg uses the simple query protocol, the only one the admin console speaks.
            return (await client.query(sql)).rows as Record<string, unknown>[];
        } finally {
            await client.end().catch(() => undefined);
        }
    };

    // Ready when the admin console answers (bounded).
    const deadline = Date.now() + 10_000;
    for (;;) {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${readLog()}`);
        try {
            await admin("SHOW VERSION");
            break;
        } catch (err) {
            if (Date.now() > deadline) {
                child.kill("SIGKILL");
                throw new Error(`pgbouncer did not come up: ${(err as Error).message}\n${readLog()}`);
            }
            await new Promise((r) => setTimeout(r, 100));
        }
    }

    return {
        port,
        ini,
        url,
        admin,
        log: readLog,
        async stop() {
            if (child.exitCode === null) {
                // PgBouncer's safe shutdown.
                child.kill("SIGINT");
                const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
                await exited;
                clearTimeout(timer);
            }
            process.removeListener("exit", killOnExit);
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}
