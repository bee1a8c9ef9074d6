// A real PgBouncer from Debian for integration tests, running exactly the
// pgbouncer.ini and userlist our renderers produce, in front of a test
// PostgreSQL (test/support/postgres.ts). Like PostgreSQL, PgBouncer refuses
// to run as root: then it runs as the `postgres` OS user.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { Credential, PgbouncerSettings, pgbouncerIni, pgbouncerUserlist } from "../../components/database-render";
import { freePort } from "./postgres";

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";
const RUN_AS = "postgres";

export function pgbouncerVersion(): string | undefined {
    const r = spawnSync(PGBOUNCER_BIN, ["--version"], { encoding: "utf8" });
    return r.status === 0 ? /PgBouncer (\S+)/.exec(r.stdout)?.[1] : undefined;
}

function osUserId(flag: "-u" | "-g"): number {
    return Number(spawnSync("id", [flag, RUN_AS], { encoding: "utf8" }).stdout.trim());
}

export interface RunningPgbouncer {
    readonly port: number;
    readonly ini: string;
    /** postgres:// URL through PgBouncer. */
    url(database: string, user: string, password: string): string;
    /** Rewrites the userlist (as a rotation would) without reloading. */
    writeUserlist(users: readonly Credential[]): void;
    /** A query on the admin console (`SHOW POOLS`, `RELOAD`). */
    admin(sql: string): Promise<Record<string, unknown>[]>;
    log(): string;
    stop(): Promise<void>;
}

export interface StartPgbouncerOptions {
    readonly settings: Omit<PgbouncerSettings, "listenAddr" | "listenPort" | "authFile" | "unixSocketDir">;
    readonly users: readonly Credential[];
    /** The admin user's password (the admin user is settings.adminUser). */
    readonly adminPassword: string;
}

export async function startPgbouncer(opts: StartPgbouncerOptions): Promise<RunningPgbouncer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgbouncer-"));
    const authFile = path.join(dir, "userlist.txt");
    const iniFile = path.join(dir, "pgbouncer.ini");
    const logFile = path.join(dir, "pgbouncer.log");
    const asRoot = process.getuid?.() === 0;
    const adminUser = opts.settings.adminUser;
    let writes = 0;
    const writeUserlist = (users: readonly Credential[]) => {
        fs.writeFileSync(authFile, pgbouncerUserlist([{ user: adminUser, password: opts.adminPassword }, ...users]), { mode: 0o600 });
        // PgBouncer re-reads the auth file on RELOAD only if its mtime changed; a rewrite within
        // the same second (same size) would look unchanged, so move the mtime on explicitly.
        const mtime = Math.floor(Date.now() / 1000) + writes++;
        fs.utimesSync(authFile, mtime, mtime);
        if (asRoot) spawnSync("chown", [RUN_AS, authFile]);
    };
    const port = await freePort();
    const ini = pgbouncerIni({ ...opts.settings, listenAddr: "127.0.0.1", listenPort: port, authFile, unixSocketDir: "" })
        .replace("[pgbouncer]", `[pgbouncer]\nlogfile = ${logFile}`);
    fs.writeFileSync(iniFile, ini);
    writeUserlist(opts.users);
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
        const client = new Client({ connectionString: url("pgbouncer", adminUser, opts.adminPassword) });
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
        writeUserlist,
        admin,
        log: readLog,
        async stop() {
            if (child.exitCode === null) {
                // Same signal as the pod's preStop: safe shutdown.
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
